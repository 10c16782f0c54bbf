// Keys for the outbound calls a function makes, derived from its record id.

import { sha256 } from './fingerprint.js'

/**
 * A stable key for an outbound call: the same across retries and takeovers of one (scope, key),
 * different per (scope, key, name). Pass it to a payment API's own Idempotency-Key.
 *
 * @example
 * ```ts
 * const id = idem.recordId('order-42')
 * await payments.charge({ amount }, { idempotencyKey: derivedKey(id, 'charge') })
 * ```
 */
export function derivedKey(id: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('derivedKey needs a non-empty name')
  return `idem_${sha256(`${id.length}:${id}:${name}`).slice(0, 32)}`
}
