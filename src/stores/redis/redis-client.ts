// Running RedisStore's commands and scripts on a client (ioredis or node-redis, through its link):
// EVALSHA with a fallback to EVAL on NOSCRIPT, batches grouped by Cluster slot, and driver errors
// turned into StoreUnavailableError naming the server.

import type { RedisArg } from '../../drivers/ioredis.js'
import type { PipelineReply, RedisLink } from '../../drivers/redis-link.js'
import { StoreUnavailableError } from '../../errors.js'
import { recordSlot } from './redis-keys.js'
import type { RedisScript } from './redis-scripts.js'

/** One script call over the items of a batch that share a slot: their positions and keys. */
interface BatchCall {
  indexes: number[]
  keys: string[]
}

export class ScriptRunner {
  readonly link: RedisLink
  #where: string | undefined

  constructor(link: RedisLink) {
    this.link = link
  }

  /** One native command on `key`; a failure is a StoreUnavailableError. */
  async command(key: string, args: RedisArg[]): Promise<unknown> {
    try {
      return await this.link.send(key, args)
    } catch (error) {
      throw this.unavailable(error)
    }
  }

  /**
   * Run `script` with EVALSHA. A server that does not know it (NOSCRIPT: restarted, failed over,
   * SCRIPT FLUSH) gets it with EVAL, which runs it and caches it for the next EVALSHA.
   */
  async run(script: RedisScript, numKeys: number, args: RedisArg[]): Promise<unknown> {
    const key = numKeys > 0 ? String(args[0]) : undefined
    try {
      return await this.link.send(key, ['EVALSHA', script.sha, numKeys, ...args])
    } catch (error) {
      if (!isNoScript(error)) throw this.unavailable(error)
    }
    try {
      return await this.link.send(key, ['EVAL', script.source, numKeys, ...args])
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
    if (!this.link.isCluster) {
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
      const node = this.link.nodeOf(slot) ?? `slot ${slot}`
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
        answers[i] = again[j] as PipelineReply
      })
    }
    return answers.map(([error, reply]) => {
      if (error !== null) throw this.unavailable(error)
      return reply
    })
  }

  async #exec(script: RedisScript, calls: RedisArg[][], loadFirst: boolean): Promise<PipelineReply[]> {
    try {
      return await this.link.pipeline(
        calls.map((call, i) =>
          loadFirst && i === 0 ? ['EVAL', script.source, ...call] : ['EVALSHA', script.sha, ...call],
        ),
      )
    } catch (error) {
      // The slot map changed between grouping and sending: send the calls one by one instead.
      if (error instanceof Error && /same slots allocation group/.test(error.message)) {
        return Promise.all(
          calls.map(([numKeys, ...args]) =>
            this.run(script, numKeys as number, args).then(
              (reply): PipelineReply => [null, reply],
              (failure: unknown): PipelineReply => [failure as Error, null],
            ),
          ),
        )
      }
      throw this.unavailable(error)
    }
  }

  /** The server, for messages: "Redis at 127.0.0.1:6379" or "Redis Cluster at 127.0.0.1:7101, …". */
  get where(): string {
    this.#where ??= this.link.describe()
    return this.#where
  }

  /** A driver error as StoreUnavailableError naming the server, with the driver's error as cause. */
  unavailable(error: unknown): StoreUnavailableError {
    if (error instanceof StoreUnavailableError) return error
    const message = error instanceof Error ? error.message : String(error)
    // A ReplyError is the server answering with an error (OOM, CLUSTERDOWN, LOADING…); anything
    // else is the connection: refused, closed, timed out, or ioredis giving up its retries.
    const answered = this.link.isReply(error)
    return new StoreUnavailableError(
      answered ? `${this.where} answered with an error: ${message}` : `${this.where} is unreachable: ${message}`,
      { cause: error },
    )
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}
