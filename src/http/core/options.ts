// Options of the HTTP layer and their defaults: one options object for every adapter.

import type { Duration } from '../../contract/duration.js'
import type { IdempotencyStore } from '../../contract/types.js'
import type { EncryptionOptions } from '../../core/encryption.js'
import type { Idempotency } from '../../core/idempotency.js'
import type { InProgressBehaviour } from '../../core/options.js'
import type { HttpRequest } from './types.js'

/**
 * The options of `HttpIdempotency`, taken as they are by every adapter (`withIdempotency`,
 * `expressIdempotency`, `fastifyIdempotency`, `honoIdempotency`). Give `store` or `idem`.
 */
export interface HttpIdempotencyOptions {
  /**
   * The store to keep keys in: an `Idempotency` is created over it. The store stays yours (the
   * HTTP layer never closes it). Or pass `idem`.
   */
  store?: IdempotencyStore
  /**
   * An existing `Idempotency`, instead of `store`: its store, events, cache and policy are used.
   * It stays yours: the HTTP layer never closes it nor its store.
   */
  idem?: Idempotency
  /** @deprecated Use `idem`: the same `Idempotency`, under the name every Idem integration uses. */
  idempotency?: Idempotency
  /** Request header that carries the key. Default `Idempotency-Key`. */
  header?: string
  /** Methods subject to idempotency; others pass through untouched. Default POST and PATCH. */
  methods?: readonly string[]
  /** A request without a key is refused with 400 (otherwise it passes through). Default false. */
  required?: boolean
  /**
   * Who is asking: keys of different principals never meet. Default: the Authorization header.
   * Whatever it returns is hashed before it is stored; undefined means anonymous.
   */
  principal?: (request: HttpRequest) => string | undefined
  /**
   * A secret (at least 32 random bytes; a string counts as its UTF-8 bytes) with which the
   * principal is hashed as an HMAC-SHA-256 instead of a plain SHA-256, so that the scopes in a dump
   * of the store cannot be matched against guessed tokens or user ids. Setting (or changing) it
   * changes every scope: a retry of a request made before keeps its key but no longer finds its
   * record. Default none (plain SHA-256, as records stored so far expect).
   */
  principalSecret?: string | Uint8Array
  /**
   * Encrypt stored responses at rest: the `encryption` option of the `Idempotency` created over
   * `store` (see `IdempotencyOptions.encryption`). With `idem`, give it to that `Idempotency` instead.
   */
  encryption?: EncryptionOptions
  /** First part of every scope, to keep several APIs apart on one store. Default `http`. */
  scope?: string
  /** Request headers that are part of the fingerprint (lower-case), e.g. `['content-type']`. Default none. */
  fingerprintHeaders?: readonly string[]
  /**
   * Response headers stored and replayed (lower-case). Default: content-type, content-encoding,
   * content-language, content-disposition, content-location, location, etag, last-modified,
   * cache-control, expires, link, vary. Set-Cookie is replayed only if you list it.
   */
  replayHeaders?: readonly string[]
  /**
   * Largest stored response, in bytes of its stored form. Default 1 MiB, or the store's (and the
   * `idem`'s) `maxResultBytes` when lower. A value above a limit the store declares is refused at
   * construction: such a response could be delivered but not stored.
   */
  maxResponseBytes?: number
  /** Largest request body an adapter reads itself (413 above it). Default 1 MiB. */
  maxRequestBytes?: number
  /** A request whose key is still running: answer 409 (`'reject'`, default) or wait for its response. */
  onInProgress?: InProgressBehaviour
  /** How long `onInProgress: 'wait'` waits before answering 409. Default: the lease. */
  waitTimeout?: Duration
  /** How long a stored response is replayed. Default: the Idempotency's (24 h). */
  ttl?: Duration
  /** How long a running request holds its key without renewal. Default: the Idempotency's (30 s). */
  lease?: Duration
  /**
   * When the connection closes before the handler ended its response, how long the handler still
   * has to end it (then it is stored) before the key is released for a retry. Default 30 s.
   */
  abandonAfter?: Duration
  /** When the store fails, run the handler unprotected instead of answering 503. Default false. */
  failOpen?: boolean
  /** Prefix of every problem `type`. Default `urn:idem:problem:`. */
  problemTypeBase?: string
}

export const HTTP_DEFAULTS = {
  header: 'idempotency-key',
  methods: ['POST', 'PATCH'],
  scope: 'http',
  maxResponseBytes: 1024 * 1024,
  maxRequestBytes: 1024 * 1024,
  abandonAfter: '30s',
} as const
