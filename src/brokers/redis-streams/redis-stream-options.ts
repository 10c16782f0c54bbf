// Options of consumeRedisStream and their resolution into plain values, with the reasons for each default.

import { hostname } from 'node:os'
import { decodeJson } from '../../consumer/decode-json.js'
import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import type { AnyRedisStreamClient } from './node-redis-stream-client.js'
import type { StreamEntry } from './stream-group.js'

export interface RedisStreamOptions<P> {
  /**
   * Your client: acks, claims, dead-lettering. An ioredis `Redis`, or a node-redis client
   * (`createClient()`) already connected. Not closed by `close()`.
   */
  client: AnyRedisStreamClient
  /**
   * The connection XREADGROUP BLOCK waits on (a blocked connection answers nothing else, so it
   * cannot be `client`). Default `client.duplicate()` (a node-redis duplicate is connected on first
   * use), closed by `close()`; yours is left open.
   */
  readClient?: AnyRedisStreamClient
  stream: string
  group: string
  /** This worker's name in the group. Default `<hostname>-<pid>-<random>`; a stable name resumes its own pending entries at start. */
  consumerName?: string
  /**
   * Where the group starts when it is created, at start or after NOGROUP (a Redis restarted without
   * persistence). Default '0': the whole stream, so that entries added before the group came back
   * are not skipped; Idem turns the re-read of anything already handled into replays. '$' reads only
   * entries added after creation.
   */
  startId?: string
  /** Hand each XREADGROUP reply to `handleBatch` (one claim round trip for the batch). Default true. */
  batch?: boolean
  /** Most entries per XREADGROUP (COUNT), never more than the consumer's free capacity. Default 64. */
  count?: number
  /** How long one XREADGROUP waits for entries (BLOCK). Default '2s'. */
  block?: Duration
  /**
   * How long an entry stays pending, without an ack or an extend, before XAUTOCLAIM hands it to
   * another consumer (min-idle-time). Set it to your Idem lease: a worker that died is noticed by the
   * broker about when its claim lapses. Long handlers call `extend` every third of it. Default: the
   * consumer options' `lease` when given, else '30s' (Idem's default lease).
   *
   * In transaction mode there is no lease to match: a claim is invisible until its transaction
   * commits, and a worker that dies rolls back. `claimIdle` is then only how long the entries of a
   * dead worker wait before another member takes them over (a live handler's entry is kept from
   * going idle by `extend`, every third of it): pick it for how soon a crash should be recovered,
   * not for how long a handler runs.
   */
  claimIdle?: Duration
  /** How often XAUTOCLAIM sweeps the group's pending entries. Default half of `claimIdle`, at most 5 s. */
  recoverEvery?: Duration
  /** The field holding the message id, the key. Default 'id'; an entry without it is keyed `<stream>:<entry id>`. */
  keyField?: string
  /** Compute the key yourself; `undefined` falls back to `<stream>:<entry id>`. Overrides `keyField`. */
  key?: (entry: StreamEntry) => string | undefined
  /** The field holding the encoded payload. Default 'payload'. */
  payloadField?: string
  /**
   * Entry to payload. Default: `decodeJson` of `payloadField` (JSON; the field arrives as a string
   * the client already decoded). A throw dead-letters the entry with the reason.
   */
  decode?: (entry: StreamEntry) => P
  /** Entries with the same ordering key are handled one at a time, in order. Default: the key. */
  orderingKey?: (entry: StreamEntry, payload: P) => string | undefined
  /** Where poison entries go. Default `<stream>:dead`. On a Cluster it must share the stream's hash slot. */
  deadLetterStream?: string
  /** Errors of the read and recovery loops (they retry on their own). Default `console.warn`. */
  onError?: (error: unknown) => void
}

export interface ResolvedStreamOptions<P> {
  stream: string
  group: string
  consumerName: string
  startId: string
  batch: boolean
  count: number
  blockMs: number
  claimIdleMs: number
  recoverEveryMs: number
  key: (entry: StreamEntry) => string | undefined
  /** The field holding the payload: every other field of an entry is one of its headers. */
  payloadField: string
  decode: (entry: StreamEntry) => P
  orderingKey: ((entry: StreamEntry, payload: P) => string | undefined) | undefined
  deadLetterStream: string
  onError: (error: unknown) => void
}

export function resolveStreamOptions<P>(
  options: RedisStreamOptions<P>,
  lease: Duration = '30s',
): ResolvedStreamOptions<P> {
  for (const name of ['stream', 'group'] as const) {
    if (typeof options[name] !== 'string' || options[name] === '')
      throw new TypeError(`${name} must be a non-empty string`)
  }
  const count = positiveInteger(options.count ?? 64, 'count')
  const claimIdleMs = toMs(options.claimIdle ?? lease, 'claimIdle')
  const keyField = options.keyField ?? 'id'
  const payloadField = options.payloadField ?? 'payload'
  const { stream } = options
  return {
    stream,
    group: options.group,
    consumerName: options.consumerName ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    startId: options.startId ?? '0',
    batch: options.batch ?? true,
    count,
    blockMs: toMs(options.block ?? '2s', 'block'),
    claimIdleMs,
    recoverEveryMs:
      options.recoverEvery === undefined
        ? Math.max(1, Math.min(Math.floor(claimIdleMs / 2), 5000))
        : toMs(options.recoverEvery, 'recoverEvery'),
    key: options.key ?? ((entry) => entry.fields[keyField]),
    payloadField,
    decode:
      options.decode ??
      ((entry) => {
        const encoded = entry.fields[payloadField]
        if (encoded === undefined) throw new Error(`the entry has no "${payloadField}" field`)
        return decodeJson(encoded) as P
      }),
    orderingKey: options.orderingKey,
    deadLetterStream: options.deadLetterStream ?? `${stream}:dead`,
    onError: options.onError ?? ((error) => console.warn('idem/redis-streams:', error)),
  }
}
