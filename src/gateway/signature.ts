// Signed requests, for routes that ask for them: the client proves it holds the route's secret
// and that the method, path, query and body are the ones it sent, and each signature is good for
// one request only (a nonce, remembered in the shared store) within a few minutes of its time.
//
//   x-idem-timestamp: unix seconds
//   x-idem-nonce:     16-128 characters of [A-Za-z0-9_-], new for each request
//   x-idem-signature: lowercase hex HMAC-SHA256(secret,
//                       `${METHOD}\n${path and query}\n${timestamp}\n${nonce}\n${hex SHA-256 of the body}`)

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IdempotencyStore } from '../contract/types.js'
import { recordId } from '../core/key.js'
import type { SignatureConfig } from './config/schema.js'

export const TIMESTAMP_HEADER = 'x-idem-timestamp'
export const NONCE_HEADER = 'x-idem-nonce'
export const SIGNATURE_HEADER = 'x-idem-signature'

const NONCE = /^[A-Za-z0-9_-]{16,128}$/
const TIMESTAMP = /^\d{1,12}$/
const SIGNATURE = /^[0-9a-f]{64}$/

/** Remembers nonces for a while; `remember` is true when the nonce was new (and is now taken). */
export interface NonceStore {
  remember(scope: string, nonce: string, ttlMs: number): Promise<boolean>
}

export type SignatureVerdict = { ok: true } | { ok: false; problem: 'BAD_SIGNATURE' | 'NONCE_REUSED'; detail: string }

export interface SignedRequest {
  method: string
  /** The request target as received: path and query. */
  url: string
  /** Header names in lowercase, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>
  body: Uint8Array
}

export interface SignRequestInput {
  method: string
  /** The path and query (`/orders?x=1`), or an absolute URL whose path and query are signed. */
  url: string
  body?: Uint8Array | string
  secret: string
  /** Unix seconds; default now. */
  timestamp?: number
  /** Default 32 random base64url characters. */
  nonce?: string
}

/** Every signed request's nonce lives in this scope: '#' is in no route name, so no route's records share it. */
const NONCE_SCOPE = '#signature-nonce'
const NONCE_FINGERPRINT = 'nonce'

/** The headers that sign a request: for clients, and for tests. */
export function signRequest(input: SignRequestInput): Record<string, string> {
  const timestamp = input.timestamp ?? Math.floor(Date.now() / 1000)
  const nonce = input.nonce ?? randomBytes(24).toString('base64url')
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError(`signRequest: timestamp must be unix seconds, got ${timestamp}`)
  }
  if (!NONCE.test(nonce)) throw new TypeError(`signRequest: nonce must be 16-128 characters of [A-Za-z0-9_-]`)
  const body = typeof input.body === 'string' ? Buffer.from(input.body) : (input.body ?? new Uint8Array())
  return {
    [TIMESTAMP_HEADER]: String(timestamp),
    [NONCE_HEADER]: nonce,
    [SIGNATURE_HEADER]: signatureOf(
      input.secret,
      input.method,
      pathAndQuery(input.url),
      String(timestamp),
      nonce,
      body,
    ),
  }
}

/**
 * Check a request's signature: its headers, its time (within ±window of `nowMs`), the HMAC, and
 * last its nonce, which is remembered only once the signature checked out (so that nobody without
 * the secret can use up a client's nonces). Rejects when the nonce store fails: the gateway
 * applies the route's onStoreFailure policy.
 */
export async function verifySignature(
  request: SignedRequest,
  config: SignatureConfig,
  nonces: NonceStore,
  nowMs: number,
): Promise<SignatureVerdict> {
  const timestamp = single(request.headers, TIMESTAMP_HEADER)
  const nonce = single(request.headers, NONCE_HEADER)
  const signature = single(request.headers, SIGNATURE_HEADER)
  for (const [name, value] of [
    [TIMESTAMP_HEADER, timestamp],
    [NONCE_HEADER, nonce],
    [SIGNATURE_HEADER, signature],
  ] as const) {
    if (value === undefined) return bad(`the ${name} header is missing`)
    if (value === null) return bad(`the ${name} header is sent more than once`)
  }
  if (!TIMESTAMP.test(timestamp as string)) return bad(`${TIMESTAMP_HEADER} must be unix seconds`)
  if (!NONCE.test(nonce as string)) return bad(`${NONCE_HEADER} must be 16-128 characters of [A-Za-z0-9_-]`)
  if (!SIGNATURE.test(signature as string)) return bad(`${SIGNATURE_HEADER} must be 64 lowercase hex digits`)

  const signedAtMs = Number(timestamp) * 1000
  const skewMs = nowMs - signedAtMs
  if (Math.abs(skewMs) > config.window) {
    return bad(
      `${TIMESTAMP_HEADER} is ${Math.round(Math.abs(skewMs) / 1000)} s ${skewMs > 0 ? 'old' : 'in the future'}, over the ${config.window / 1000} s window`,
    )
  }

  const expected = Buffer.from(
    signatureOf(
      config.secret,
      request.method,
      pathAndQuery(request.url),
      timestamp as string,
      nonce as string,
      request.body,
    ),
    'hex',
  )
  // Both are 32 bytes (the header was checked to be 64 hex digits), as timingSafeEqual requires.
  if (!timingSafeEqual(expected, Buffer.from(signature as string, 'hex'))) {
    return bad('the signature does not match the request (method, path and query, timestamp, nonce, body)')
  }

  // The request is acceptable until the clock passes signedAt + window, up to 2 windows from now
  // (a request stamped a window ahead): its nonce is kept that long, plus one more window for
  // clock differences between replicas and the store, which decides the expiry.
  const keepMs = Math.max(0, signedAtMs + config.window - nowMs) + config.window
  if (!(await nonces.remember(NONCE_SCOPE, nonce as string, Math.max(1, keepMs)))) {
    return { ok: false, problem: 'NONCE_REUSED', detail: `the nonce ${nonce} was already used` }
  }
  return { ok: true }
}

/**
 * Nonces as records of the idempotency store, so that every replica on it shares them: `begin`
 * is one atomic claim, so of two requests with one nonce (on any replicas) exactly one gets
 * `acquired`. The record stays in progress, lease and ttl both `ttlMs`, and then expires.
 */
export function storeNonces(store: IdempotencyStore): NonceStore {
  return {
    async remember(scope, nonce, ttlMs) {
      const claim = await store.begin(recordId(scope, nonce), NONCE_FINGERPRINT, ttlMs, ttlMs)
      return claim.outcome === 'acquired'
    },
  }
}

function signatureOf(
  secret: string,
  method: string,
  target: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array,
): string {
  const bodyHash = createHash('sha256').update(body).digest('hex')
  return createHmac('sha256', secret)
    .update(`${method.toUpperCase()}\n${target}\n${timestamp}\n${nonce}\n${bodyHash}`)
    .digest('hex')
}

/** What is signed: the request target as sent (`/path?query`), or the path and query of an absolute URL. */
function pathAndQuery(url: string): string {
  if (url.startsWith('/')) return url
  const parsed = new URL(url)
  return `${parsed.pathname}${parsed.search}`
}

/** The header's one value; undefined when absent, null when sent more than once. */
function single(headers: SignedRequest['headers'], name: string): string | undefined | null {
  const value = headers[name]
  if (Array.isArray(value)) return value.length === 1 ? (value[0] as string) : null
  return value
}

function bad(detail: string): SignatureVerdict {
  return { ok: false, problem: 'BAD_SIGNATURE', detail }
}
