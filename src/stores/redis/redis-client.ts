// Running RedisStore's scripts on a client: EVALSHA with a fallback to EVAL on NOSCRIPT, batches
// grouped by Cluster slot, and driver errors turned into StoreUnavailableError naming the server.

import type { RedisArg, RedisClient } from '../../drivers/ioredis.js'
import { StoreUnavailableError } from '../../errors.js'
import { recordSlot } from './redis-keys.js'
import type { RedisScript } from './redis-scripts.js'

/** One script call over the items of a batch that share a slot: their positions and keys. */
interface BatchCall {
  indexes: number[]
  keys: string[]
}

export class ScriptRunner {
  readonly client: RedisClient
  #where: string | undefined

  constructor(client: RedisClient) {
    this.client = client
  }

  /**
   * Run `script` with EVALSHA. A server that does not know it (NOSCRIPT: restarted, failed over,
   * SCRIPT FLUSH) gets it with EVAL, which runs it and caches it for the next EVALSHA.
   */
  async run(script: RedisScript, numKeys: number, args: RedisArg[]): Promise<unknown> {
    try {
      return await this.client.evalsha(script.sha, numKeys, ...args)
    } catch (error) {
      if (!isNoScript(error)) throw this.unavailable(error)
    }
    try {
      return await this.client.eval(script.source, numKeys, ...args)
    } catch (error) {
      throw this.unavailable(error)
    }
  }

  /**
   * Run `script` over the items of a batch and return one reply per item, in input order. The
   * script takes the items' keys and `argsFor(indexes)` and replies an array, one entry per key.
   * Standalone: one script for the whole batch. Cluster: a script may only touch one slot, so one
   * script per slot, and one pipeline per node carrying that node's scripts, all sent at once.
   */
  async batch(
    script: RedisScript,
    ids: readonly string[],
    keys: readonly string[],
    argsFor: (indexes: readonly number[]) => RedisArg[],
  ): Promise<unknown[]> {
    if (this.client.isCluster !== true) {
      const all = keys.map((_, i) => i)
      return (await this.run(script, keys.length, [...keys, ...argsFor(all)])) as unknown[]
    }
    const bySlot = new Map<number, BatchCall>()
    ids.forEach((id, i) => {
      const slot = recordSlot(id)
      let call = bySlot.get(slot)
      if (call === undefined) {
        call = { indexes: [], keys: [] }
        bySlot.set(slot, call)
      }
      call.indexes.push(i)
      call.keys.push(keys[i] as string)
    })
    const byNode = new Map<string, BatchCall[]>()
    for (const [slot, call] of bySlot) {
      // Before the Cluster has its slot map, each slot's script goes alone (ioredis routes it).
      const node = this.client.slots?.[slot]?.[0] ?? `slot ${slot}`
      const calls = byNode.get(node)
      if (calls === undefined) byNode.set(node, [call])
      else calls.push(call)
    }
    const replies: unknown[] = new Array(ids.length)
    const scatter = (call: BatchCall, reply: unknown): void => {
      const values = reply as unknown[]
      call.indexes.forEach((index, j) => {
        replies[index] = values[j]
      })
    }
    await Promise.all(
      [...byNode.values()].map(async (calls) => {
        const answers = await this.#pipeline(
          script,
          calls.map((call) => [call.keys.length, ...call.keys, ...argsFor(call.indexes)]),
        )
        calls.forEach((call, i) => {
          scatter(call, answers[i])
        })
      }),
    )
    return replies
  }

  /**
   * Several calls of one script (each `[numKeys, ...keys, ...args]`) in one pipeline to one node.
   * Calls answered NOSCRIPT did not run; they go again in a second pipeline that starts with EVAL,
   * which loads the script for the EVALSHAs after it.
   */
  async #pipeline(script: RedisScript, calls: RedisArg[][]): Promise<unknown[]> {
    if (calls.length === 1) {
      const [numKeys, ...args] = calls[0] as RedisArg[]
      return [await this.run(script, numKeys as number, args)]
    }
    const answers = await this.#exec(script, calls, false)
    const missing = answers.flatMap(([error], i) => (error !== null && isNoScript(error) ? [i] : []))
    if (missing.length > 0) {
      const again = await this.#exec(
        script,
        missing.map((i) => calls[i] as RedisArg[]),
        true,
      )
      missing.forEach((i, j) => {
        answers[i] = again[j] as [Error | null, unknown]
      })
    }
    return answers.map(([error, reply]) => {
      if (error !== null) throw this.unavailable(error)
      return reply
    })
  }

  async #exec(script: RedisScript, calls: RedisArg[][], loadFirst: boolean): Promise<[Error | null, unknown][]> {
    try {
      const pipeline = this.client.pipeline()
      calls.forEach(([numKeys, ...args], i) => {
        if (loadFirst && i === 0) pipeline.eval(script.source, numKeys as number, ...args)
        else pipeline.evalsha(script.sha, numKeys as number, ...args)
      })
      const answers = await pipeline.exec()
      if (answers === null) throw new Error('the pipeline was discarded')
      return answers
    } catch (error) {
      // The slot map changed between grouping and sending: send the calls one by one instead.
      if (error instanceof Error && /same slots allocation group/.test(error.message)) {
        return Promise.all(
          calls.map(([numKeys, ...args]) =>
            this.run(script, numKeys as number, args).then(
              (reply): [null, unknown] => [null, reply],
              (failure: unknown): [Error, null] => [failure as Error, null],
            ),
          ),
        )
      }
      throw this.unavailable(error)
    }
  }

  /** The server, for messages: "Redis at 127.0.0.1:6379" or "Redis Cluster at 127.0.0.1:7101, …". */
  get where(): string {
    this.#where ??= describeClient(this.client)
    return this.#where
  }

  /** A driver error as StoreUnavailableError naming the server, with the driver's error as cause. */
  unavailable(error: unknown): StoreUnavailableError {
    if (error instanceof StoreUnavailableError) return error
    const message = error instanceof Error ? error.message : String(error)
    // A ReplyError is the server answering with an error (OOM, CLUSTERDOWN, LOADING…); anything
    // else is the connection: refused, closed, timed out, or ioredis giving up its retries.
    const answered = (error as { name?: unknown })?.name === 'ReplyError'
    return new StoreUnavailableError(
      answered ? `${this.where} answered with an error: ${message}` : `${this.where} is unreachable: ${message}`,
      { cause: error },
    )
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

interface Address {
  host?: unknown
  port?: unknown
  path?: unknown
}

/** Reads the address from ioredis' options (Redis) or startup nodes (Cluster), untyped on purpose. */
export function describeClient(client: RedisClient): string {
  const address = (a: Address | string | number | undefined): string => {
    if (typeof a !== 'object' || a === null) return String(a)
    if (typeof a.path === 'string' && a.path !== '') return a.path
    return `${typeof a.host === 'string' ? a.host : 'localhost'}:${typeof a.port === 'number' || typeof a.port === 'string' ? a.port : 6379}`
  }
  if (client.isCluster === true) {
    const nodes = (client as { startupNodes?: unknown }).startupNodes
    const list = Array.isArray(nodes) ? nodes.map((n) => address(n as Address)).join(', ') : 'unknown nodes'
    return `Redis Cluster at ${list}`
  }
  return `Redis at ${address((client as { options?: Address }).options ?? {})}`
}
