// Kafka record headers: the names Idem writes, and reading and writing them whether the client
// decodes headers as Buffers (its default) or as strings.

import type { KafkaHeaders } from './kafka-driver.js'

/** The header that carries a message's stable id: the producer sets it, the consumer keys on it. */
export const MESSAGE_ID_HEADER = 'idem-message-id'

/** Headers of a record on the dead-letter topic, besides the original record's own. */
export const DEAD_LETTER_HEADERS = {
  reason: 'idem-dead-letter-reason',
  topic: 'idem-original-topic',
  partition: 'idem-original-partition',
  offset: 'idem-original-offset',
  key: 'idem-key',
  deliveryCount: 'idem-delivery-count',
} as const

/** A header's value as text (UTF-8), or undefined when the record has no such header. */
export function headerText(headers: KafkaHeaders | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined
  for (const [key, value] of headers) {
    if (textOf(key) !== name) continue
    return value === undefined || value === null ? undefined : textOf(value)
  }
  return undefined
}

/**
 * Every header of a record as [name, value] text (as `headerText` reads one), in record order: a
 * name given more than once (Kafka allows it) once per value. Names as written: Kafka header keys
 * are case-sensitive. A null value is left out.
 */
export function* headerEntries(headers: KafkaHeaders | undefined): Iterable<readonly [string, string | undefined]> {
  if (headers === undefined) return
  for (const [key, value] of headers) {
    yield [textOf(key), value === undefined || value === null ? undefined : textOf(value)]
  }
}

/** A record key, header name or header value as text (UTF-8 for Buffers). */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  return String(value)
}

/** Headers as a producer with the default serializers takes them: Buffer names and values. */
export function bufferHeaders(entries: Iterable<[unknown, unknown]>): Map<Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>()
  for (const [key, value] of entries) headers.set(toBuffer(key), toBuffer(value))
  return headers
}

export function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value)
  return Buffer.from(value === undefined || value === null ? '' : String(value), 'utf8')
}
