// Message ids that sort by creation time (UUIDv7, RFC 9562): unique without coordination, and an
// outbox or a log ordered by id is ordered by time.

import { randomFillSync } from 'node:crypto'

let lastMs = 0
let sequence = 0

/**
 * A new UUIDv7. Ids from one process increase strictly, even within one millisecond.
 *
 * @example
 * const message = { id: newMessageId(), payload: order } // make it once, reuse it on every retry
 */
export function newMessageId(now: number = Date.now()): string {
  const bytes = Buffer.alloc(16)
  randomFillSync(bytes, 6)
  let ms = Math.max(now, lastMs)
  if (ms === lastMs) {
    // Same millisecond: a 12-bit counter in rand_a keeps the order; on overflow borrow the next ms.
    sequence++
    if (sequence > 0xfff) {
      ms++
      sequence = 0
    }
  } else {
    sequence = bytes.readUInt16BE(6) & 0x7ff
  }
  lastMs = ms
  bytes.writeUIntBE(ms, 0, 6)
  bytes[6] = 0x70 | (sequence >> 8)
  bytes[7] = sequence & 0xff
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
