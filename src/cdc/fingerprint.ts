// What a source transaction contained, as the fingerprint of its idempotency record.

import { createHash } from 'node:crypto'
import type { SourceTransaction } from './types.js'

/**
 * What a source transaction contained, hashed: the same GTID read again must carry the same
 * rows. Decoding depends on the source connection's options (dateStrings, timezone…): keep them
 * the same between runs of one consumer.
 */
export function fingerprintOf(transaction: SourceTransaction): string {
  const text = JSON.stringify(
    transaction.changes.map((change) => [change.kind, change.schema, change.table, change.before, change.after]),
    (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
  )
  return createHash('sha256').update(text).digest('base64url')
}
