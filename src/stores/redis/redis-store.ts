// RedisStore: records in Redis (standalone or Cluster) through ioredis or node-redis, optional
// peers. A new key is claimed, and a completed one replayed, by one native command (`SET … NX
// GET`); the other transitions (takeover, complete with fencing, extend, release) are Lua scripts
// (redis-scripts.ts). Every operation is atomic on the server and one round trip, except a begin
// that meets an in-progress claim: its lease is judged by a script, a second round trip. Records
// expire natively, so nothing needs sweeping.

import { randomUUID } from 'node:crypto'
import { BaseStore } from '../../contract/base-store.js'
import { StoreClient } from '../../contract/store-client.js'
import { factoryOrClientWith, readStoreOptions } from '../../contract/store-options.js'
import { leaseLost } from '../../contract/transitions.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
} from '../../contract/types.js'
import type { RedisClient } from '../../drivers/ioredis.js'
import type { NodeRedisClient, NodeRedisCluster } from '../../drivers/node-redis.js'
import { type AnyRedisClient, linkTo } from '../../drivers/redis-link.js'
import { StoreUnavailableError } from '../../errors.js'
import { ScriptRunner } from './redis-client.js'
import { assertRedisPrefix, DEFAULT_REDIS_PREFIX, recordKey } from './redis-keys.js'
import { completedRecord, KnownClaims } from './redis-known-claims.js'
import { BEGIN, BEGIN_MANY, COMPLETE, COMPLETE_KNOWN, COMPLETE_MANY, EXTEND, GET, RELEASE } from './redis-scripts.js'

/** The clients RedisStore accepts: ioredis `Redis` or `Cluster`, node-redis client or cluster (connected). */
export type RedisStoreClient = RedisClient | NodeRedisClient | NodeRedisCluster

export interface RedisStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster`, or a connected node-redis client or cluster
   * (`await createClient().connect()`), that you own (the store never closes it); or a factory
   * for one, called on first use (the store owns that client and closes it on `close()`).
   * Configure it to give up: both clients retry forever by default, see docs/redis.md.
   */
  client: RedisStoreClient | (() => RedisStoreClient)
  /** Prepended to every key. Default `idem:`; no `{` or `}` (the key's hash tag follows it). */
  prefix?: string
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
}

const OPTIONS = {
  store: 'RedisStore',
  client: 'an ioredis Redis or Cluster, a connected node-redis client or cluster, or a factory () => client',
  accepts: factoryOrClientWith([]),
  known: ['client', 'prefix', 'maxResultBytes'],
}

/**
 * Records in Redis (standalone or Cluster), through ioredis or node-redis. A new key costs one
 * native `SET … NX GET` and the completion script; a duplicate one `SET … NX GET`. Records expire
 * natively.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { Idempotency } from 'idem'
 * import { RedisStore } from 'idem/redis'
 *
 * const store = new RedisStore({ client: () => new Redis({ maxRetriesPerRequest: 2 }) }) // quit by store.close()
 * const idem = new Idempotency({ store })
 * ```
 */
export class RedisStore extends BaseStore {
  readonly prefix: string
  readonly #client: StoreClient<RedisStoreClient>
  #runner: ScriptRunner | undefined
  /** Claims of attempt 1 this store made, until settled: their completed records are built here. */
  readonly #claims = new KnownClaims()

  constructor(options: RedisStoreOptions) {
    const o = readStoreOptions<RedisStoreOptions>(options, OPTIONS)
    super('RedisStore', o.maxResultBytes)
    this.prefix = o.prefix ?? DEFAULT_REDIS_PREFIX
    assertRedisPrefix(this.prefix)
    this.#client = new StoreClient<RedisStoreClient>(
      o.client,
      (cause) =>
        new StoreUnavailableError(`RedisStore's client factory failed: ${(cause as Error)?.message ?? cause}`, {
          cause,
        }),
    )
    if (this.#client.current !== undefined) this.#runner = runnerFor(this.#client.current)
    // Begins are native commands, already one socket write per tick (the link); a completion is a
    // script, and Redis spends more starting one than running the few commands inside.
    this.batchPerTick({ begins: false, completes: true })
  }

  /** The client (ioredis or node-redis), created by the factory on first use. */
  get client(): RedisStoreClient {
    if (this.closed) throw this.closedError()
    return this.#run().link.client as RedisStoreClient
  }

  /** The Redis key a record id is stored under: `${prefix}{${id}}`, `%` and `}` escaped in the tag. */
  key(id: string): string {
    return recordKey(this.prefix, id)
  }

  /**
   * `SET key <claim> PX <keep> NX GET`: creates the claim when the key is absent (the reply is nil),
   * and otherwise changes nothing and answers the record, from which a replay or a mismatch is
   * read here. Only a record in progress under the same fingerprint goes on to the begin script,
   * which judges its lease by Redis' clock (live: in progress; lapsed: taken over).
   */
  protected async doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    const runner = this.#run()
    const key = recordKey(this.prefix, id)
    const token = randomUUID()
    const keepMs = Math.max(ttlMs, leaseMs)
    const fingerprintBytes = Buffer.byteLength(fingerprint)
    const claim = `q${leaseMs},${keepMs},${fingerprintBytes},${fingerprint}${token}`
    // Read before sending: Redis starts the lease when the SET runs, later than this, so the
    // estimate reported (this process cannot read Redis' clock here) errs early, never late.
    const sentAt = Date.now()
    const record = await runner.command(key, ['SET', key, claim, 'PX', keepMs, 'NX', 'GET'])
    if (record === null) {
      this.#claims.remember(token, { createdAt: sentAt, fingerprint, fingerprintBytes })
      return { outcome: 'acquired', token, attempt: 1, recovered: false, leaseUntil: sentAt + leaseMs }
    }
    const settled = typeof record === 'string' ? settledBy(record, fingerprint, fingerprintBytes) : undefined
    if (settled !== undefined) return settled
    const reply = await runner.run(BEGIN, 1, [key, fingerprint, token, leaseMs, ttlMs])
    return this.#begun(toBeginResult(reply, token, fingerprint), fingerprint, leaseMs)
  }

  protected async doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    const runner = this.#run()
    const key = recordKey(this.prefix, id)
    const known = this.#claims.take(token)
    const done =
      known === undefined
        ? await runner.run(COMPLETE, 1, [key, token, result, ttlMs])
        : await runner.run(COMPLETE_KNOWN, 1, [key, token, completedRecord(known, result), ttlMs])
    if (Number(done) !== 1) throw leaseLost(id, 'complete')
  }

  protected async doRelease(id: string, token: string): Promise<void> {
    this.#claims.forget(token)
    const runner = this.#run()
    const done = await runner.run(RELEASE, 1, [recordKey(this.prefix, id), token])
    if (Number(done) !== 1) throw leaseLost(id, 'release')
  }

  protected async doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    const runner = this.#run()
    const leaseUntil = Number(await runner.run(EXTEND, 1, [recordKey(this.prefix, id), token, leaseMs]))
    if (leaseUntil === 0) throw leaseLost(id, 'extend')
    return leaseUntil
  }

  protected async doGet(id: string): Promise<IdempotencyRecord | null> {
    const runner = this.#run()
    const reply = (await runner.run(GET, 1, [recordKey(this.prefix, id)])) as (string | number)[] | null
    return reply === null ? null : toRecord(id, reply)
  }

  /** One DEL: atomic on its own, so no script is needed. */
  protected async doDelete(id: string): Promise<boolean> {
    const key = recordKey(this.prefix, id)
    return Number(await this.#run().command(key, ['DEL', key])) === 1
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const runner = this.#run()
    const tokens = items.map(() => randomUUID())
    const replies = await runner.batch(BEGIN_MANY, ...this.#keysOf(items), (indexes) => {
      const args: (string | number)[] = [leaseMs, ttlMs]
      for (const i of indexes) args.push((items[i] as BeginItem).fingerprint, tokens[i] as string)
      return args
    })
    return replies.map((reply, i) => {
      const fingerprint = (items[i] as BeginItem).fingerprint
      return this.#begun(toBeginResult(reply, tokens[i] as string, fingerprint), fingerprint, leaseMs)
    })
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    // An oversize result is not sent: the script only checks that the caller owns the claim. A
    // claim this store remembers goes with its completed record built here (flag '2').
    const flags: string[] = []
    const seconds: string[] = []
    for (const item of items) {
      const known = this.#claims.take(item.token)
      const tooLarge = this.tooLarge(item.result)
      flags.push(tooLarge ? '1' : known !== undefined ? '2' : '0')
      seconds.push(tooLarge ? '' : known !== undefined ? completedRecord(known, item.result) : item.result)
    }
    const replies = await this.#run().batch(COMPLETE_MANY, ...this.#keysOf(items), (indexes) => {
      const args: (string | number)[] = [ttlMs, indexes.map((i) => flags[i]).join('')]
      for (const i of indexes) args.push((items[i] as CompleteItem).token, seconds[i] as string)
      return args
    })
    return replies.map((reply) => {
      const code = Number(reply)
      return code === 1 ? 'completed' : code === 2 ? 'too_large' : 'lease_lost'
    })
  }

  /** Redis expires records itself (PEXPIREAT), so there is never anything to sweep. */
  protected async doSweep(): Promise<number> {
    return 0
  }

  /** Quit the client if the store made it (through a factory); one passed in is left alone. */
  protected async doClose(): Promise<void> {
    this.#claims.clear()
    await this.#client.close((client) => (this.#runner ?? runnerFor(client)).link.quit())
  }

  /** A begin script's result; an acquired claim of attempt 1 is remembered, made at leaseUntil - leaseMs by Redis' clock. */
  #begun(result: BeginResult, fingerprint: string, leaseMs: number): BeginResult {
    if (result.outcome === 'acquired' && result.attempt === 1) {
      const fingerprintBytes = Buffer.byteLength(fingerprint)
      this.#claims.remember(result.token, { createdAt: result.leaseUntil - leaseMs, fingerprint, fingerprintBytes })
    }
    return result
  }

  #keysOf(items: readonly { id: string }[]): [string[], string[]] {
    const ids = items.map((item) => item.id)
    return [ids, ids.map((id) => recordKey(this.prefix, id))]
  }

  /** The script runner, once the store is known to be open (and the factory called). */
  #run(): ScriptRunner {
    if (this.#runner !== undefined) return this.#runner
    if (this.closed) throw this.closedError()
    this.#runner = runnerFor(this.#client.openSync())
    return this.#runner
  }
}

function runnerFor(client: AnyRedisClient): ScriptRunner {
  const link = linkTo(client)
  // ioredis' own keyPrefix goes in front of ours: with a brace in it, it would capture the hash tag.
  if (link.keyPrefix !== undefined && /[{}]/.test(link.keyPrefix)) {
    throw new TypeError(`RedisStore cannot use a client whose keyPrefix contains "{" or "}": ${link.keyPrefix}`)
  }
  return new ScriptRunner(link)
}

/**
 * What the record `SET … NX GET` answered settles, without a script: a replay (completed, same
 * fingerprint) or a mismatch (another fingerprint, any state). Undefined for a claim in progress
 * under this fingerprint, whose lease only the begin script may judge, and for anything it cannot
 * read (the script then answers, or fails, as for any record).
 */
function settledBy(record: string, fingerprint: string, fingerprintBytes: number): BeginResult | undefined {
  const state = record.charCodeAt(0)
  // The header's comma-separated numbers: 'c' and 'p' have five (the fifth the fingerprint's
  // length in bytes), 'q' three.
  const fields = state === 113 /* q */ ? 3 : state === 99 /* c */ || state === 112 /* p */ ? 5 : 0
  if (fields === 0) return undefined
  const commas: number[] = []
  let at = 0
  for (let i = 0; i < fields; i++) {
    at = record.indexOf(',', at + 1)
    if (at < 0) return undefined
    commas.push(at)
  }
  const bytes = Number(record.slice((commas[fields - 2] as number) + 1, at))
  const same = bytes === fingerprintBytes && record.startsWith(fingerprint, at + 1)
  if (!same) return { outcome: 'mismatch', state: state === 99 ? 'completed' : 'in_progress' }
  if (state !== 99) return undefined
  return {
    outcome: 'completed',
    result: record.slice(at + 1 + fingerprint.length),
    attempt: Number(record.slice(1, commas[0])),
    completedAt: Number(record.slice((commas[1] as number) + 1, commas[2])),
  }
}

/** A begin reply (see redis-scripts.ts) as a BeginResult; `token` is the one this call proposed. */
function toBeginResult(reply: unknown, token: string, fingerprint: string): BeginResult {
  if (typeof reply === 'string') return replayOf(reply, fingerprint)
  const r = reply as unknown[]
  switch (Number(r[0])) {
    case 0: {
      const attempt = Number(r[2])
      // Only a takeover makes attempt 2 or more: a fresh record always starts at 1.
      return { outcome: 'acquired', token, attempt, recovered: attempt > 1, leaseUntil: Number(r[1]) }
    }
    case 1:
      return { outcome: 'in_progress', leaseUntil: Number(r[1]), retryAfterMs: Number(r[3]), attempt: Number(r[2]) }
    default:
      return { outcome: 'mismatch', state: r[1] === 'c' ? 'completed' : 'in_progress' }
  }
}

/**
 * A completed record, `c<attempt>,<createdAt>,<completedAt>,,<fingerprint bytes>,<fingerprint><result>`.
 * The script checked that its fingerprint is `fingerprint`, so the result starts right after it
 * (counted in UTF-16 units here; the byte count in the record is for Lua).
 */
function replayOf(record: string, fingerprint: string): BeginResult {
  const attemptEnd = record.indexOf(',')
  const createdEnd = record.indexOf(',', attemptEnd + 1)
  const updatedEnd = record.indexOf(',', createdEnd + 1)
  const lengthEnd = record.indexOf(',', updatedEnd + 2)
  return {
    outcome: 'completed',
    result: record.slice(lengthEnd + 1 + fingerprint.length),
    attempt: Number(record.slice(1, attemptEnd)),
    completedAt: Number(record.slice(createdEnd + 1, updatedEnd)),
  }
}

/** A GET reply (see redis-scripts.ts): state, attempt, createdAt, updatedAt, leaseUntil, fingerprint, tail, expiry. */
function toRecord(id: string, r: (string | number)[]): IdempotencyRecord {
  const completed = r[0] === 'c'
  return {
    id,
    state: completed ? 'completed' : 'in_progress',
    fingerprint: r[5] as string,
    token: completed ? null : (r[6] as string),
    leaseUntil: completed ? null : Number(r[4]),
    attempt: Number(r[1]),
    result: completed ? (r[6] as string) : null,
    createdAt: Number(r[2]),
    updatedAt: Number(r[3]),
    expiresAt: Number(r[7]),
  }
}
