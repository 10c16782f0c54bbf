// Delivery.headers() for every broker adapter: a message's headers as a record of strings, built
// only when a probe asks (a tracer reading `traceparent`) and then kept, so that asking again
// costs nothing and every probe sees the same record.
//
// Names are kept as the broker gives them: none of the protocols adapted here treats header names
// as case-insensitive (AMQP field tables, NATS headers as the nats.js client matches them by
// default, Redis stream fields, MQTT 5 user properties and Kafka record headers are all
// case-sensitive), so lower-casing would make a header unreadable under the name it was written
// with. Producers that follow W3C Trace Context write `traceparent` in lower case already.

/** A header's name and value as the broker's client decoded it. */
export type HeaderEntry = readonly [name: unknown, value: unknown]

/** The record `Delivery.headers()` returns. */
export type HeaderRecord = Readonly<Record<string, string | undefined>>

/**
 * One header value as text, or undefined to leave the header out (undefined, null, an empty
 * array): strings as they are, Buffers and byte arrays decoded as UTF-8, numbers, booleans and
 * bigints with `String()`, arrays joined with ', ', AMQP's typed values (`{ '!': 'timestamp' |
 * 'decimal', value }`) as their number, a Date in ISO 8601, anything else (a nested AMQP table) as JSON.
 */
export function headerValueText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')
  if (Array.isArray(value)) {
    const parts = value.map(headerValueText).filter((part): part is string => part !== undefined)
    return parts.length === 0 ? undefined : parts.join(', ')
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString()
  const typed = value as { '!'?: unknown; value?: unknown }
  if (typed['!'] === 'timestamp' && typeof typed.value === 'number') return String(typed.value)
  if (typed['!'] === 'decimal') {
    const { places, digits } = (typed.value ?? {}) as { places?: unknown; digits?: unknown }
    if (typeof places === 'number' && typeof digits === 'number') return String(digits / 10 ** places)
  }
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * The headers `entries` as a frozen record of strings. A name given more than once (NATS and
 * Kafka headers, MQTT user properties may repeat) gets its values joined with ', ', in order;
 * values that are absent are left out. Names are kept as they are (see the top of this file).
 */
export function headerRecord(entries: Iterable<HeaderEntry>): HeaderRecord {
  const record: Record<string, string> = {}
  for (const [rawName, value] of entries) {
    const text = headerValueText(value)
    if (text === undefined) continue
    const name = typeof rawName === 'string' ? rawName : (headerValueText(rawName) ?? '')
    const previous = Object.hasOwn(record, name) ? record[name] : undefined
    // defineProperty, not assignment: a header named "__proto__" is a header like any other.
    Object.defineProperty(record, name, {
      value: previous === undefined ? text : `${previous}, ${text}`,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return Object.freeze(record)
}

/** `headers()` for a delivery: builds the record from `entries()` on the first call and keeps it. */
export function lazyHeaders(entries: () => Iterable<HeaderEntry>): () => HeaderRecord {
  let record: HeaderRecord | undefined
  return () => {
    record ??= headerRecord(entries())
    return record
  }
}
