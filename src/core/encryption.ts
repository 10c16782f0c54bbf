// Stored outcomes encrypted at rest: AES-256-GCM under a named key, with the record id and the
// fingerprint as associated data, so that a dump of the store reads as noise and a result copied
// to another record (or written for another request) fails authentication instead of replaying.
//
// Stored form (text, since stores keep strings):
//   e1:<key id>:<base64 of IV (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes)>
// A plaintext outcome is JSON of an object and always starts with `{`, so the two never meet.

import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto'
import {
  EncryptionConfigError,
  EncryptionKeyUnknownError,
  ResultTooLargeError,
  StoredResultAuthenticationError,
  StoredResultNotEncryptedError,
} from '../errors.js'

/** The `encryption` option of `Idempotency`. */
export interface EncryptionOptions {
  /**
   * Every key a stored result may be encrypted under, by key id: 32 bytes each, as a Buffer (or
   * Uint8Array) or a base64 string (`generateEncryptionKey()` makes one). Key ids are 1–32 of
   * `A-Z a-z 0-9 . _ -`; they are stored beside each result, so never put a secret in one.
   */
  keys: Readonly<Record<string, Uint8Array | string>>
  /** The key id new results are encrypted under; it must be listed in `keys`. */
  current: string
  /**
   * Read plaintext results (written before encryption was turned on) instead of refusing them with
   * `STORED_RESULT_NOT_ENCRYPTED`: for the migration, until the last of them has expired. Default false.
   */
  acceptPlaintext?: boolean
}

/** The version tag every stored form begins with; a later format gets `e2:`. */
const VERSION = 'e1:'
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32
const KEY_ID = /^[A-Za-z0-9._-]{1,32}$/
/** Standard or URL-safe base64 of exactly 32 bytes (43 characters, then an optional `=`). */
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/
/** `{`: the first character of every plaintext outcome. */
const OPEN_BRACE = 0x7b

/**
 * IVs are cut from a pool of random bytes refilled 512 IVs at a time: one call into the CSPRNG
 * per IV cost about as much as the encryption of a small result. Every IV is still fresh random
 * bytes, never reused: the pool only moves forward.
 */
const IV_POOL_BYTES = IV_BYTES * 512
let ivPool = Buffer.alloc(0)
let ivOffset = 0

function freshIv(): Buffer {
  if (ivOffset + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES)
    ivOffset = 0
  }
  const iv = ivPool.subarray(ivOffset, ivOffset + IV_BYTES)
  ivOffset += IV_BYTES
  return iv
}

/** A fresh random 32-byte key, in base64: what `encryption.keys` takes. */
export function generateEncryptionKey(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

/** Bytes a stored form takes for `plaintextBytes` of JSON under a key id of `keyIdLength` characters. */
export function sealedBytes(plaintextBytes: number, keyIdLength: number): number {
  return VERSION.length + keyIdLength + 1 + 4 * Math.ceil((plaintextBytes + IV_BYTES + TAG_BYTES) / 3)
}

/**
 * The most plaintext bytes whose stored form fits in `limit` bytes under a key id of
 * `keyIdLength` characters: what the HTTP layer sizes a response against.
 */
export function plaintextBudget(limit: number, keyIdLength: number): number {
  const room = limit - VERSION.length - keyIdLength - 1
  return Math.max(0, Math.floor(room / 4) * 3 - IV_BYTES - TAG_BYTES)
}

/** The keys of one `Idempotency`, checked once; seals new outcomes and opens stored ones. */
export class ResultCipher {
  readonly #keys = new Map<string, KeyObject>()
  readonly #current: KeyObject
  readonly #currentId: string
  /** `e1:<current id>:`, the head of every result sealed now. */
  readonly #head: string
  readonly #acceptPlaintext: boolean

  constructor(options: EncryptionOptions) {
    if (options === null || typeof options !== 'object') {
      throw new EncryptionConfigError('encryption needs { keys: { [keyId]: key }, current: keyId }')
    }
    const { keys, current } = options
    if (keys === null || typeof keys !== 'object') {
      throw new EncryptionConfigError('encryption.keys must be an object of key id to 32-byte key')
    }
    for (const [id, key] of Object.entries(keys)) {
      if (!KEY_ID.test(id)) {
        throw new EncryptionConfigError(
          `encryption key id ${JSON.stringify(id.slice(0, 40))} is not 1–32 characters of A-Z a-z 0-9 . _ -`,
        )
      }
      this.#keys.set(id, createSecretKey(keyBytes(id, key)))
    }
    if (typeof current !== 'string' || !this.#keys.has(current)) {
      throw new EncryptionConfigError(
        `encryption.current (${JSON.stringify(current)}) must be one of the key ids in encryption.keys (${[...this.#keys.keys()].join(', ') || 'none'})`,
      )
    }
    if (options.acceptPlaintext !== undefined && typeof options.acceptPlaintext !== 'boolean') {
      throw new EncryptionConfigError('encryption.acceptPlaintext must be true or false')
    }
    this.#currentId = current
    this.#current = this.#keys.get(current) as KeyObject
    this.#head = `${VERSION}${current}:`
    this.#acceptPlaintext = options.acceptPlaintext === true
  }

  /** The key id new results are sealed under. */
  get currentKeyId(): string {
    return this.#currentId
  }

  /** Bytes the stored form of `plaintextBytes` of JSON takes under the current key. */
  sealedBytes(plaintextBytes: number): number {
    return sealedBytes(plaintextBytes, this.#currentId.length)
  }

  /**
   * `json` sealed under the current key for record `id` and `fingerprint`; RESULT_TOO_LARGE when
   * the stored form is over `maxBytes` (checked before anything is encrypted).
   */
  seal(json: string, maxBytes: number, id: string, fingerprint: string): string {
    const bytes = this.sealedBytes(Buffer.byteLength(json, 'utf8'))
    if (bytes > maxBytes) throw new ResultTooLargeError(bytes, maxBytes, { recordId: id })
    const iv = freshIv()
    const cipher = createCipheriv('aes-256-gcm', this.#current, iv)
    cipher.setAAD(associatedData(this.#head, id, fingerprint))
    const body = Buffer.concat([iv, cipher.update(json, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return this.#head + body.toString('base64')
  }

  /** The JSON sealed in `stored` for record `id` and `fingerprint`; plaintext only with `acceptPlaintext`. */
  open(stored: string, id: string, fingerprint: string): string {
    if (stored.charCodeAt(0) === OPEN_BRACE) {
      if (this.#acceptPlaintext) return stored
      throw new StoredResultNotEncryptedError(
        `The stored result of ${JSON.stringify(id)} is not encrypted; set encryption.acceptPlaintext while results written before encryption are retained`,
        { recordId: id },
      )
    }
    const keyEnd = stored.startsWith(VERSION) ? stored.indexOf(':', VERSION.length) : -1
    if (keyEnd < 0) throw unreadable(id, 'it is not in a format this version of Idem reads')
    const keyId = stored.slice(VERSION.length, keyEnd)
    const key = this.#keys.get(keyId)
    if (key === undefined) {
      throw new EncryptionKeyUnknownError(
        keyId,
        `The stored result of ${JSON.stringify(id)} is encrypted under key id ${JSON.stringify(keyId.slice(0, 40))}, which encryption.keys does not list; list that key again to read it`,
        { recordId: id },
      )
    }
    const body = Buffer.from(stored.slice(keyEnd + 1), 'base64')
    if (body.length < IV_BYTES + TAG_BYTES) throw unreadable(id, 'it is truncated')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES))
      decipher.setAAD(associatedData(stored.slice(0, keyEnd + 1), id, fingerprint))
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
      const plain = decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES))
      // final() checks the tag (and throws when it does not match); in GCM it returns no bytes.
      decipher.final()
      return plain.toString('utf8')
    } catch (cause) {
      throw unreadable(id, 'it was altered, or copied from another record or request', cause)
    }
  }
}

/**
 * What a stored form authenticates besides its ciphertext: its own head (version and key id), the
 * record id (length-prefixed, so no two (id, fingerprint) pairs share bytes) and the fingerprint.
 */
function associatedData(head: string, id: string, fingerprint: string): Buffer {
  return Buffer.from(`${head}${id.length}:${id}${fingerprint}`, 'utf8')
}

/** The stored form of a result whose `Idempotency` has no `encryption` option: refused, never parsed as JSON. */
export function openWithoutKeys(stored: string, id: string): never {
  if (stored.startsWith(VERSION)) {
    const keyId = stored.slice(VERSION.length, Math.max(VERSION.length, stored.indexOf(':', VERSION.length)))
    throw new EncryptionKeyUnknownError(
      keyId,
      `The stored result of ${JSON.stringify(id)} is encrypted (key id ${JSON.stringify(keyId.slice(0, 40))}), but this Idempotency has no encryption option`,
      { recordId: id },
    )
  }
  throw unreadable(id, 'it is neither JSON nor in a format this version of Idem reads')
}

function unreadable(id: string, why: string, cause?: unknown): StoredResultAuthenticationError {
  return new StoredResultAuthenticationError(
    `The stored result of ${JSON.stringify(id)} failed authentication and is not replayed: ${why}`,
    { recordId: id, cause },
  )
}

function keyBytes(id: string, key: Uint8Array | string): Uint8Array {
  if (typeof key === 'string') {
    if (!BASE64_KEY.test(key)) {
      throw new EncryptionConfigError(
        `encryption key ${JSON.stringify(id)} must be 32 bytes: a Buffer, or base64 of 32 bytes (44 characters); generateEncryptionKey() makes one`,
      )
    }
    // Node's base64 decoder takes the URL-safe alphabet as well.
    return Buffer.from(key, 'base64')
  }
  if (!(key instanceof Uint8Array)) {
    throw new EncryptionConfigError(`encryption key ${JSON.stringify(id)} must be a Buffer or a base64 string`)
  }
  if (key.length !== KEY_BYTES) {
    throw new EncryptionConfigError(
      `encryption key ${JSON.stringify(id)} is ${key.length} bytes; AES-256 needs exactly ${KEY_BYTES}`,
    )
  }
  return key
}
