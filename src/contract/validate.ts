// Argument checks shared by every store, so that bad input fails the same way everywhere.

import { ResultTooLargeError } from '../errors.js'
import { positiveInteger } from './duration.js'
import type { BeginItem, CompleteItem } from './types.js'

/** Longest record id a store accepts: a 255-character scope and key plus their framing. */
export const MAX_RECORD_ID_LENGTH = 1024
/** Default limit on a stored result: 1 MiB of UTF-8. */
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024

export function assertRecordId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_RECORD_ID_LENGTH) {
    throw new TypeError(`Record id must be a string of 1 to ${MAX_RECORD_ID_LENGTH} characters, got ${describe(id)}`)
  }
}

export function assertToken(token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length === 0) {
    throw new TypeError(`Owner token must be a non-empty string, got ${describe(token)}`)
  }
}

/** Longest fingerprint a store accepts; Idem's own are 43 characters (SHA-256, base64url). */
export const MAX_FINGERPRINT_LENGTH = 1024

export function assertFingerprint(fingerprint: unknown): asserts fingerprint is string {
  if (typeof fingerprint !== 'string' || fingerprint.length > MAX_FINGERPRINT_LENGTH) {
    throw new TypeError(
      `Fingerprint must be a string of at most ${MAX_FINGERPRINT_LENGTH} characters, got ${describe(fingerprint)}`,
    )
  }
}

/** Lease and retention are whole positive milliseconds. */
export function assertPositiveMs(name: string, ms: unknown): asserts ms is number {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms <= 0) {
    throw new RangeError(`${name} must be a positive whole number of milliseconds, got ${describe(ms)}`)
  }
}

export function assertLimit(limit: unknown): asserts limit is number {
  positiveInteger(limit, 'sweep limit')
}

export function resultBytes(result: string): number {
  return Buffer.byteLength(result, 'utf8')
}

export function assertResult(result: unknown, maxBytes: number, id: string): asserts result is string {
  if (typeof result !== 'string') {
    throw new TypeError(`Result must be a string (the core encodes values), got ${describe(result)}`)
  }
  const bytes = resultBytes(result)
  if (bytes > maxBytes) throw new ResultTooLargeError(bytes, maxBytes, { recordId: id })
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a ${value.length}-character string` : JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  return typeof value
}

/** The checks of one `begin`, shared by every store. */
export function assertBeginArgs(id: unknown, fingerprint: unknown, leaseMs: unknown, ttlMs: unknown): void {
  assertRecordId(id)
  assertFingerprint(fingerprint)
  assertPositiveMs('leaseMs', leaseMs)
  assertPositiveMs('ttlMs', ttlMs)
}

/** The checks of a `beginMany`: every item is checked before anything is written. */
export function assertBeginManyArgs(items: readonly BeginItem[], leaseMs: unknown, ttlMs: unknown): void {
  assertPositiveMs('leaseMs', leaseMs)
  assertPositiveMs('ttlMs', ttlMs)
  for (const item of items) {
    assertRecordId(item.id)
    assertFingerprint(item.fingerprint)
  }
}

/** The checks of a `completeMany`; sizes are judged per item by the store (`too_large`). */
export function assertCompleteManyArgs(items: readonly CompleteItem[], ttlMs: unknown): void {
  assertPositiveMs('ttlMs', ttlMs)
  for (const item of items) {
    assertRecordId(item.id)
    assertToken(item.token)
    if (typeof item.result !== 'string') throw new TypeError(`Result must be a string, got ${describe(item.result)}`)
  }
}

/** The checks of `release` and `extend` (and of `complete`, before its result). */
export function assertOwnerArgs(id: unknown, token: unknown): void {
  assertRecordId(id)
  assertToken(token)
}
