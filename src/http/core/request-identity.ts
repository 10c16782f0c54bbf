// Who is asking and what they ask: the scope a key lives in (principal + method + route) and the
// fingerprint of the request (method, target, canonical body, chosen headers).

import { isUtf8 } from 'node:buffer'
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto'
import { canonicalJson, sha256 } from '../../core/fingerprint.js'
import { MAX_KEY_LENGTH } from '../../core/key.js'
import { EncryptionConfigError } from '../../errors.js'
import type { HeaderRecord, HttpRequest } from './types.js'

/** The principal when the request carries none (no Authorization header). */
export const ANONYMOUS = 'anonymous'

/** Default principal: the Authorization header, hashed so that no credential is ever stored. */
export function authorizationPrincipal(request: HttpRequest): string | undefined {
  const value = firstHeader(request.headers, 'authorization')
  return value === undefined || value === '' ? undefined : value
}

/** Fewest bytes a `principalSecret` may have: the hash is only as hard to reverse as the secret is to guess. */
export const MIN_PRINCIPAL_SECRET_BYTES = 32

/**
 * The `principalSecret` option as an HMAC key: a string is taken as its UTF-8 bytes. Refused
 * (`ENCRYPTION_CONFIG_INVALID`) when shorter than 32 bytes.
 */
export function principalKey(secret: string | Uint8Array): KeyObject {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
  if (!(bytes instanceof Uint8Array)) {
    throw new EncryptionConfigError('principalSecret must be a string or a Buffer of at least 32 bytes')
  }
  if (bytes.length < MIN_PRINCIPAL_SECRET_BYTES) {
    throw new EncryptionConfigError(
      `principalSecret is ${bytes.length} bytes; it needs at least ${MIN_PRINCIPAL_SECRET_BYTES} random bytes (generateEncryptionKey() makes a suitable one)`,
    )
  }
  return createSecretKey(bytes)
}

/**
 * The scope of a key: `<prefix>|<principal hash>|<METHOD> <route>`. The principal is always hashed
 * (it may be a credential or a user id): with `secret` (`principalKey(principalSecret)`) as an
 * HMAC-SHA-256, so that a dump of the store cannot be turned back into short tokens by trying
 * them; without it as a plain SHA-256, as before. A route too long or not printable ASCII is
 * hashed too, so every scope is a valid one.
 */
export function scopeOf(
  prefix: string,
  principal: string | undefined,
  method: string,
  route: string,
  secret?: KeyObject,
): string {
  const who =
    principal === undefined
      ? ANONYMOUS
      : secret === undefined
        ? sha256(`principal:${principal}`).slice(0, 27)
        : createHmac('sha256', secret).update(`principal:${principal}`).digest('base64url').slice(0, 27)
  const scope = `${prefix}|${who}|${method} ${route}`
  if (scope.length <= MAX_KEY_LENGTH && /^[\x20-\x7e]+$/.test(scope)) return scope
  return `${prefix}|${who}|${method} #${sha256(route)}`
}

/** The fingerprint of a request: SHA-256 over method, target, selected headers and the body's digest. */
export function requestFingerprint(request: HttpRequest, body: unknown, fingerprintHeaders: readonly string[]): string {
  const headers = fingerprintHeaders.map((name) => {
    const value = request.headers[name]
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : String(value)
  })
  const contentType = firstHeader(request.headers, 'content-type')
  // Strings, nulls and an array of them: plain JSON.stringify is their canonical JSON already
  // (no object keys to sort), without canonicalJson's per-value replacer.
  return sha256(JSON.stringify([request.method, request.url, headers, bodyDigest(body, contentType)]))
}

/**
 * A JSON body is digested as canonical JSON (keys sorted), so `{"a":1,"b":2}` and a reordered or
 * re-spaced copy match, and so do raw bytes and a body parser's object; anything else by its bytes.
 */
export function bodyDigest(body: unknown, contentType: string | undefined): string {
  if (body === undefined || body === null) return 'empty'
  if (body instanceof Uint8Array || typeof body === 'string') {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body
    if (bytes.length === 0) return 'empty'
    if (isJson(contentType) && isUtf8(bytes)) {
      try {
        const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
        return `json:${sha256(canonicalJson(JSON.parse(text)))}`
      } catch {
        // not valid JSON after all: fall through to the bytes
      }
    }
    return `bytes:${sha256Bytes(bytes)}`
  }
  return `json:${sha256(canonicalJson(body))}`
}

function sha256Bytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url')
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  // The usual value, without splitting, trimming and lower-casing copies of it.
  if (contentType === 'application/json') return true
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? ''
  return type === 'application/json' || type.endsWith('+json')
}

export function firstHeader(headers: HeaderRecord, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  if (typeof value === 'string') return value
  if (typeof value === 'number') return String(value)
  return value[0]
}
