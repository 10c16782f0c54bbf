// Key and scope validation, and the unambiguous record id derived from them.

import { InvalidKeyError } from '../errors.js'

export const MAX_KEY_LENGTH = 255
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/

/** Keys and scopes are printable ASCII, 1–255 characters; anything else is rejected, never truncated. */
export function validateKey(key: unknown, what: 'key' | 'scope' = 'key'): string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError(`Idempotency ${what} must be a string, got ${key === null ? 'null' : typeof key}`)
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidKeyError(`Idempotency ${what} must be 1 to ${MAX_KEY_LENGTH} characters, got ${key.length}`)
  }
  if (!PRINTABLE_ASCII.test(key)) {
    const at = [...key].findIndex((ch) => !PRINTABLE_ASCII.test(ch))
    throw new InvalidKeyError(
      `Idempotency ${what} must be printable ASCII; character ${at} is U+${(key.codePointAt(at) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`,
    )
  }
  return key
}

/**
 * The record id for (scope, key): the scope's length, then scope and key. The length prefix makes
 * it unambiguous: ("a:b", "c") → "3:a:b:c" and ("a", "b:c") → "1:a:b:c".
 */
export function recordId(scope: string, key: string): string {
  return `${scope.length}:${scope}:${key}`
}
