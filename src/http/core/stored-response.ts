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

/**
 * A stored value that is not a response `encodeResponse` wrote (a corrupted record, or one another
 * program wrote under the key): it is refused rather than replayed as garbage, or as a status or
 * header that would make the framework throw while sending it.
 */
export class StoredResponseError extends Error {
  constructor(reason: string) {
    super(`The stored response cannot be replayed: ${reason}`)
    this.name = 'StoredResponseError'
  }
}

/**
 * The replay of a stored response, marked `Idempotent-Replayed: true`; undefined for a `{ x }`
 * record. Throws a `StoredResponseError` for a value that is not a stored response.
 */
export function decodeResponse(stored: StoredResponse): HttpResponse | undefined {
  const wrong = invalidStored(stored)
  if (wrong !== undefined) throw new StoredResponseError(wrong)
  if ('x' in stored) return undefined
  const body = 't' in stored ? Buffer.from(stored.t, 'utf8') : Buffer.from(stored.b, 'base64')
  return { status: stored.s, headers: [...stored.h, ['idempotent-replayed', 'true']], body }
}

/** RFC 9110 token: what a header name is made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/**
 * Control characters (HTAB aside) that no framework lets into a header value: CR and LF would split
 * the header, node:http throws on any of them. Characters above U+00FF are left to the runtime that
 * stored them (node:http refuses them on the way out, so it never stores one).
 */
const CONTROL = /[^\t\x20-\x7e\u0080-\uffff]/
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
/**
 * No UTF-16 surrogate without its other half: UTF-8 cannot hold one, so `encodeResponse` never
 * stores one. String#isWellFormed (Node 20, ES2024: not in this project's lib) is native, where a
 * regular expression over every replayed body cost a scan in JavaScript.
 */
const wellFormed = (text: string) => (text as string & { isWellFormed(): boolean }).isWellFormed()

/** Why `stored` is not what `encodeResponse` writes, or undefined when it is. */
function invalidStored(stored: unknown): string | undefined {
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return 'not an object'
  const record = stored as Record<string, unknown>
  if ('x' in record) {
    return Number.isSafeInteger(record.x) && (record.x as number) >= 0 ? undefined : 'x is not a byte count'
  }
  const { s, h, t, b } = record
  if (!Number.isInteger(s) || (s as number) < 100 || (s as number) > 599) return 's is not a status from 100 to 599'
  if (!Array.isArray(h)) return 'h is not a list of headers'
  for (const pair of h) {
    if (!Array.isArray(pair) || pair.length !== 2) return 'a header is not a [name, value] pair'
    const [name, value] = pair as unknown[]
    if (typeof name !== 'string' || !TOKEN.test(name)) return 'a header name is not an HTTP token'
    if (typeof value !== 'string' || CONTROL.test(value))
      return `the value of header ${name} is not a valid field value`
  }
  if ('t' in record === 'b' in record) return 'the body is not one of t (text) or b (base64)'
  if ('t' in record) return typeof t === 'string' && wellFormed(t) ? undefined : 't is not UTF-8 text'
  return typeof b === 'string' && b.length % 4 === 0 && BASE64.test(b) ? undefined : 'b is not base64'
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
