// How a function's outcome is stored: JSON of { v: value } for a result, { e: error } for a
// final error, so that a duplicate receives exactly what the first execution produced. With an
// `encryption` option that JSON is sealed (encryption.ts) before it is stored, and the size limit
// applies to the sealed form, which is what the store holds.

import { resultBytes } from '../contract/validate.js'
import { ErrorCode, IdempotencyError, ResultNotSerializableError, ResultTooLargeError } from '../errors.js'
import type { ResultCipher } from './encryption.js'
import { type ErrorRegistry, restoreError } from './error-types.js'

export interface StoredError {
  name: string
  message: string
  /** The error's own enumerable properties that survive JSON (code, status, details…). */
  props?: Record<string, unknown>
}

type Envelope = { v?: unknown } | { e: StoredError }

export type Decoded = { ok: true; value: unknown } | { ok: false; error: Error }

/** `cipher` and `fingerprint`: with encryption, the outcome is sealed for this record and request. */
export function encodeValue(
  value: unknown,
  maxBytes: number,
  recordId: string,
  cipher?: ResultCipher,
  fingerprint = '',
): string {
  // A handler that returns nothing (most consumers' do) is stored as `{}`, JSON.stringify({}) without the call.
  if (value === undefined) return checkSize('{}', maxBytes, recordId, cipher, fingerprint)
  let json: string | undefined
  try {
    json = JSON.stringify({ v: value })
  } catch (cause) {
    throw new ResultNotSerializableError(
      `The function's result cannot be stored as JSON: ${(cause as Error).message}`,
      { cause, recordId },
    )
  }
  return checkSize(json as string, maxBytes, recordId, cipher, fingerprint)
}

export function encodeError(
  error: unknown,
  maxBytes: number,
  recordId: string,
  cipher?: ResultCipher,
  fingerprint = '',
): string {
  const stored: StoredError =
    error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) }
  if (error !== null && typeof error === 'object') {
    const props: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(error)) {
      if (k === 'stack' || k === 'cause') continue
      try {
        JSON.stringify(v)
        props[k] = v
      } catch {
        // a property JSON cannot hold is left out rather than failing the store
      }
    }
    if (Object.keys(props).length > 0) stored.props = props
  }
  const json = JSON.stringify({ e: stored })
  const bytes = resultBytes(json)
  if ((cipher === undefined ? bytes : cipher.sealedBytes(bytes)) <= maxBytes) {
    return cipher === undefined ? json : cipher.seal(json, maxBytes, recordId, fingerprint)
  }
  // Too large with its properties: keep what identifies it, so the claim can still be completed.
  const slim = JSON.stringify({ e: { name: stored.name, message: stored.message.slice(0, 1000) } })
  return checkSize(slim, maxBytes, recordId, cipher, fingerprint)
}

/** The stored outcome; a stored error comes back as `reviveError` builds it (restored by `errorTypes` when its name is registered). */
/**
 * Throws a SyntaxError when `stored` is not an outcome `encodeValue` or `encodeError` wrote (not
 * JSON, or JSON of another shape): a damaged record, or one something else wrote, is never
 * replayed as `undefined` or a half-read error.
 */
export function decode(stored: string, errorTypes?: ErrorRegistry): Decoded {
  const envelope = JSON.parse(stored) as unknown
  if (!isEnvelope(envelope)) throw new SyntaxError('it is JSON, but not { "v": result } or { "e": error }')
  if ('e' in envelope) return { ok: false, error: reviveError(envelope.e, errorTypes) }
  return { ok: true, value: envelope.v }
}

/** `{}` (a result of undefined), `{ v }`, or `{ e: { name, message, props? } }`: nothing else. */
function isEnvelope(value: unknown): value is Envelope {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  let members = 0
  for (const key in value) {
    if (++members > 1 || (key !== 'v' && key !== 'e')) return false
  }
  const e = (value as { e?: unknown }).e
  if (e === undefined) return !('e' in value)
  if (e === null || typeof e !== 'object') return false
  const { name, message, props } = e as Partial<StoredError>
  return (
    typeof name === 'string' &&
    typeof message === 'string' &&
    (props === undefined || (props !== null && typeof props === 'object' && !Array.isArray(props)))
  )
}

/**
 * A stored error comes back as an Error with the same name, message and JSON-safe properties;
 * Idem's own errors (a result that was too large to store, say) come back as IdempotencyError;
 * an error whose name is in `errorTypes` comes back as an instance of that class.
 */
function reviveError(stored: StoredError, errorTypes: ErrorRegistry | undefined): Error {
  const type = errorTypes?.get(stored.name)
  if (type !== undefined) {
    const restored = restoreError(type, stored.message)
    // Defined rather than assigned: a class's own accessors (a getter-only `code`) are not called.
    for (const [k, v] of Object.entries(stored.props ?? {})) {
      Object.defineProperty(restored, k, { value: v, enumerable: true, writable: true, configurable: true })
    }
    if (restored.name !== stored.name) {
      Object.defineProperty(restored, 'name', {
        value: stored.name,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    Object.defineProperty(restored, 'replayed', { value: true, enumerable: false })
    return restored
  }
  const code = stored.props?.code
  const error = isErrorCode(code) ? new IdempotencyError(code, stored.message) : new Error(stored.message)
  error.name = stored.name
  // Defined, not assigned: a stored `__proto__` member would otherwise replace the error's prototype.
  for (const [k, v] of Object.entries(stored.props ?? {})) {
    Object.defineProperty(error, k, { value: v, enumerable: true, writable: true, configurable: true })
  }
  Object.defineProperty(error, 'replayed', { value: true, enumerable: false })
  return error
}

function checkSize(
  json: string,
  maxBytes: number,
  recordId: string,
  cipher: ResultCipher | undefined,
  fingerprint: string,
): string {
  // The sealed form is measured (and refused when over) by the cipher, before it encrypts.
  if (cipher !== undefined) return cipher.seal(json, maxBytes, recordId, fingerprint)
  if (json.length > maxBytes / 3) {
    // Only count bytes when the string could be over: UTF-8 is at most 3 bytes per UTF-16 unit.
    const bytes = resultBytes(json)
    if (bytes > maxBytes) throw new ResultTooLargeError(bytes, maxBytes, { recordId })
  }
  return json
}

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCode, code)
}
