// How a response is kept for replay: status, the allow-listed headers and the body's exact bytes
// (as text when they are valid UTF-8, which round-trips exactly and is a third smaller; base64
// otherwise), inside the JSON result that `Idempotency.run` stores.

import { isUtf8 } from 'node:buffer'
import type { HttpResponse } from './types.js'

/** The stored form. `x` instead of a response: executed, but its response was over the size limit. */
export type StoredResponse =
  | { s: number; h: Array<[string, string]>; t: string }
  | { s: number; h: Array<[string, string]>; b: string }
  | { x: number }

/** Headers replayed by default: those that describe the body or the created resource. Never Set-Cookie. */
export const DEFAULT_REPLAY_HEADERS: readonly string[] = [
  'content-type',
  'content-encoding',
  'content-language',
  'content-disposition',
  'content-location',
  'location',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
  'link',
  'vary',
]

export function encodeResponse(
  status: number,
  headers: Array<[string, string]>,
  body: Uint8Array,
  allowed: ReadonlySet<string>,
): StoredResponse {
  const h = headers.filter(([name]) => allowed.has(name))
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return isUtf8(buffer) ? { s: status, h, t: buffer.toString('utf8') } : { s: status, h, b: buffer.toString('base64') }
}

/** The replay of a stored response, marked `Idempotent-Replayed: true`; undefined for a `{ x }` record. */
export function decodeResponse(stored: StoredResponse): HttpResponse | undefined {
  if ('x' in stored) return undefined
  const body = 't' in stored ? Buffer.from(stored.t, 'utf8') : Buffer.from(stored.b, 'base64')
  return { status: stored.s, headers: [...stored.h, ['idempotent-replayed', 'true']], body }
}

/**
 * An upper bound of the bytes the stored JSON takes, so that the limit is enforced here and a
 * store never refuses the result (which would leave the key claimed until its lease lapses).
 */
export function storedSize(stored: StoredResponse, limit: number): number {
  if ('x' in stored) return 32
  // A UTF-16 unit takes at most 6 bytes in JSON (\u0000): that bound costs no copy of any string,
  // and only near the limit is it worth measuring exactly, escapes and all. Within the limit the
  // bound gives the answer the exact size would.
  let loose = 32
  for (const [name, value] of stored.h) loose += (name.length + value.length) * 6 + 8
  loose += 't' in stored ? stored.t.length * 6 + 2 : stored.b.length + 2
  if (loose <= limit) return loose
  let size = 32
  for (const [name, value] of stored.h) size += Buffer.byteLength(JSON.stringify(name) + JSON.stringify(value)) + 4
  if ('b' in stored) return size + stored.b.length + 2
  if (size + stored.t.length * 6 + 2 <= limit) return size + stored.t.length * 6 + 2
  return size + Buffer.byteLength(JSON.stringify(stored.t))
}

/** node:http and Fastify header records as name/value pairs, lower-case, one pair per value. */
export function headerPairs(headers: Readonly<Record<string, unknown>>): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || value === null) continue
    const lower = name.toLowerCase()
    if (Array.isArray(value)) for (const item of value) pairs.push([lower, String(item)])
    else pairs.push([lower, String(value)])
  }
  return pairs
}

/**
 * Hand each header name once to `set`, with its value, or its values in order when the name
 * repeats (Set-Cookie): what setHeader and Fastify's reply.header take. Names come in the order
 * they first appear. Without the Map and arrays of grouping every name: responses have few headers.
 */
export function setHeaderValues(
  headers: ReadonlyArray<readonly [string, string]>,
  set: (name: string, value: string | string[]) => void,
): void {
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i] as readonly [string, string]
    let seen = false
    for (let j = 0; j < i && !seen; j++) seen = (headers[j] as readonly [string, string])[0] === name
    if (seen) continue
    let values: string[] | undefined
    for (let j = i + 1; j < headers.length; j++) {
      const later = headers[j] as readonly [string, string]
      if (later[0] !== name) continue
      if (values === undefined) values = [value]
      values.push(later[1])
    }
    set(name, values ?? value)
  }
}
