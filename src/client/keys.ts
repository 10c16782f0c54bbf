// What keeps a key to one request: the fingerprint of the request each key was first used for,
// remembered for the client's lifetime (a bounded LRU), so that the same key with another body is
// refused before anything is sent. The server would answer 422 anyway, but only after a round trip
// and only while it still has the record; here the mistake surfaces at the call that made it.

import { IdempotencyKeyReusedError } from './errors.js'

/** A digest of method, URL and body bytes. SHA-256 where SubtleCrypto exists (Node, secure pages), else FNV-1a. */
export async function fingerprint(method: string, url: string, body: Uint8Array | null): Promise<string> {
  const head = new TextEncoder().encode(`${method.toUpperCase()} ${url}\n`)
  const bytes = new Uint8Array(head.length + (body?.length ?? 0))
  bytes.set(head)
  if (body) bytes.set(body, head.length)
  const subtle = globalThis.crypto?.subtle
  if (subtle) {
    const digest = new Uint8Array(await subtle.digest('SHA-256', bytes))
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
  }
  // Insecure browser contexts have no SubtleCrypto. The digest only catches a caller's mistake,
  // nobody forges it, so a non-cryptographic hash is enough there.
  let hash = 0xcbf29ce484222325n
  for (const byte of bytes) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n)
  return `fnv1a:${hash.toString(16)}`
}

export class KeyMemory {
  readonly #limit: number
  readonly #fingerprints = new Map<string, string>()

  constructor(limit: number) {
    this.#limit = limit
  }

  /**
   * Bind `key` to `print`, or throw when it is already bound to another request. A Map keeps
   * insertion order, so re-inserting on use and evicting the first entry is an LRU.
   */
  claim(key: string, print: string): void {
    const known = this.#fingerprints.get(key)
    if (known !== undefined && known !== print) {
      throw new IdempotencyKeyReusedError(
        `Idempotency-Key ${JSON.stringify(key)} was already used by this client for a different request ` +
          '(another method, URL or body); use a new key for a new operation',
        { key, detectedBy: 'client' },
      )
    }
    this.#fingerprints.delete(key)
    this.#fingerprints.set(key, print)
    if (this.#fingerprints.size > this.#limit) {
      const oldest = this.#fingerprints.keys().next()
      if (!oldest.done) this.#fingerprints.delete(oldest.value)
    }
  }

  get size(): number {
    return this.#fingerprints.size
  }
}
