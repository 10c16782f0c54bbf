// Sealing an event into an entry (encrypt + chain) and opening it again (authenticate + decrypt).
//
// Encodings: `iv`, `body` and `tag` are standard base64 (with padding); `hash`/`prev` lowercase hex.
// The header authenticated with the body is the JSON array [v, seq, time, kind, kid, alg, prev]:
// moving a body under another seq, time, key id, algorithm or chain position breaks its tag.
//
// Key layout (32 bytes either way, so a keyring can switch algorithm without new key sizes):
//   aes-256-gcm       the whole key; 12-byte IV; 16-byte tag (enforced on open: Node would
//                     otherwise accept a truncated tag, which weakens GCM's authentication).
//   sm4-ctr-hmac-sm3  bytes 0–15 the SM4 key, 16–31 the HMAC-SM3 key (never one key for both);
//                     16-byte IV (the initial counter block); tag = HMAC-SM3(macKey,
//                     u32be(len(header)) ‖ header ‖ iv ‖ ciphertext), 32 bytes — the length
//                     prefix makes the split between header and the rest unambiguous.

import * as crypto from 'node:crypto'
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuditIntegrityError } from './errors.js'
import type { AuditAlgorithm, AuditEntry, AuditEvent, AuditKeyring, CheckpointEntry, SealedEntry } from './types.js'

/** `prev` of the first entry. */
export const GENESIS = '0'.repeat(64)

export const KEY_BYTES = 32
const IV_BYTES: Record<AuditAlgorithm, number> = { 'aes-256-gcm': 12, 'sm4-ctr-hmac-sm3': 16 }
const TAG_BYTES: Record<AuditAlgorithm, number> = { 'aes-256-gcm': 16, 'sm4-ctr-hmac-sm3': 32 }

/** Fields covered by `hash`, in the documented order (everything but `hash`). */
const ENTRY_FIELDS = ['v', 'seq', 'time', 'kind', 'kid', 'alg', 'prev', 'iv', 'body', 'tag'] as const
const CHECKPOINT_FIELDS = ['v', 'seq', 'time', 'kind', 'signer', 'prev', 'upTo', 'head', 'sig'] as const

/** What `entryHash` accepts: either kind without its hash (the union keeps literals with `kid` etc. legal). */
export type UnhashedEntry = Omit<SealedEntry, 'hash'> | Omit<CheckpointEntry, 'hash'> | Omit<AuditEntry, 'hash'>

/**
 * SHA-256 (hex) of the canonical form: JSON of the array of the field values in the documented
 * order. An array, not an object, so that the result does not depend on key order or on fields
 * the format does not know; JSON.stringify of strings and integers is deterministic.
 */
export function entryHash(entry: UnhashedEntry): string {
  // Read by name: the parameter type may be the non-distributive Omit, which only knows common fields.
  const fields = entry as unknown as Readonly<Record<string, unknown>>
  const order = entry.kind === 'checkpoint' ? CHECKPOINT_FIELDS : ENTRY_FIELDS
  const values = order.map((name) => fields[name] ?? null)
  return sha256Hex(JSON.stringify(values))
}

// The one-shot crypto.hash (Node ≥ 20.12) is ~3× faster than createHash for short inputs, which
// matters when verifying millions of entries; read through the namespace so older Node 20 still loads.
const oneShot = (crypto as { hash?: typeof crypto.hash }).hash
const sha256Hex = (text: string): string =>
  oneShot === undefined
    ? crypto.createHash('sha256').update(text, 'utf8').digest('hex')
    : oneShot('sha256', text, 'hex')

/** Encrypt `event` under the keyring's active key and link it after `at.prev`. */
export function sealEntry(
  event: AuditEvent,
  at: { seq: number; time: Date; prev: string },
  keyring: AuditKeyring,
): SealedEntry {
  if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
    throw new TypeError('an audit event must be an object with a string `type`')
  }
  const key = keyring.keys.get(keyring.active)
  if (key === undefined) throw new Error(`active audit key id ${keyring.active} is not in the keyring`)
  if (key.length !== KEY_BYTES) {
    throw new Error(`audit key ${keyring.active} has ${key.length} bytes; ${keyring.alg} needs ${KEY_BYTES}`)
  }
  const plaintext = Buffer.from(JSON.stringify(event), 'utf8')
  const header = {
    v: 1 as const,
    seq: at.seq,
    time: at.time.toISOString(),
    kind: 'entry' as const,
    kid: keyring.active,
    alg: keyring.alg,
    prev: at.prev,
  }
  const aad = headerBytes(header)
  const iv = randomBytes(IV_BYTES[keyring.alg])
  let body: Buffer
  let tag: Buffer
  if (keyring.alg === 'aes-256-gcm') {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES['aes-256-gcm'] })
    cipher.setAAD(aad)
    body = Buffer.concat([cipher.update(plaintext), cipher.final()])
    tag = cipher.getAuthTag()
  } else {
    const cipher = createCipheriv('sm4-ctr', key.subarray(0, 16), iv)
    body = Buffer.concat([cipher.update(plaintext), cipher.final()])
    tag = sm3Mac(key.subarray(16, 32), aad, iv, body)
  }
  const unhashed = {
    ...header,
    iv: iv.toString('base64'),
    body: body.toString('base64'),
    tag: tag.toString('base64'),
  }
  return { ...unhashed, hash: entryHash(unhashed) }
}

/**
 * Authenticate and decrypt an entry. Checks the tag/MAC before any plaintext is used (GCM's
 * check in OpenSSL and `timingSafeEqual` for the HMAC are constant-time). Does not check `hash`
 * or the chain: that is `verifyAuditLog`'s job.
 */
export function openEntry(entry: SealedEntry, keyring: Pick<AuditKeyring, 'keys'>): AuditEvent {
  const problem = entryShapeProblem(entry)
  const seq = seqOf(entry)
  if (problem !== undefined) throw new AuditIntegrityError(seq, `not a valid entry: ${problem}`)
  if (entry.kind !== 'entry') throw new AuditIntegrityError(seq, 'is a checkpoint, not an encrypted entry')
  return openCheckedEntry(entry, keyring)
}

/** `openEntry` for an entry whose shape `entryShapeProblem` has already accepted (verifyAuditLog). */
export function openCheckedEntry(entry: SealedEntry, keyring: Pick<AuditKeyring, 'keys'>): AuditEvent {
  const seq = entry.seq
  const key = keyring.keys.get(entry.kid)
  if (key === undefined) throw new AuditIntegrityError(seq, `key id ${entry.kid} is not in the keyring`)
  if (key.length !== KEY_BYTES) {
    throw new AuditIntegrityError(seq, `key ${entry.kid} has ${key.length} bytes; ${entry.alg} needs ${KEY_BYTES}`)
  }
  const iv = fromBase64(entry.iv)
  const tag = fromBase64(entry.tag)
  if (iv === undefined || tag === undefined) throw new AuditIntegrityError(seq, 'iv or tag is not valid base64')
  // The body is decoded leniently (the strict check costs a re-encoding of every body): the hash
  // covers its text and the tag its bytes, so a re-spelt body changes nothing that is trusted.
  const body = Buffer.from(entry.body, 'base64')
  if (iv.length !== IV_BYTES[entry.alg] || tag.length !== TAG_BYTES[entry.alg]) {
    throw new AuditIntegrityError(seq, `iv or tag has the wrong length for ${entry.alg}`)
  }
  const aad = headerBytes(entry)
  let plaintext: Buffer
  if (entry.alg === 'aes-256-gcm') {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES['aes-256-gcm'] })
    decipher.setAAD(aad)
    decipher.setAuthTag(tag)
    const head = decipher.update(body)
    try {
      plaintext = Buffer.concat([head, decipher.final()])
    } catch (cause) {
      throw new AuditIntegrityError(seq, 'tag does not verify (body, iv or header modified, or wrong key)', { cause })
    }
  } else {
    const expected = sm3Mac(key.subarray(16, 32), aad, iv, body)
    if (!timingSafeEqual(expected, tag)) {
      throw new AuditIntegrityError(seq, 'MAC does not verify (body, iv or header modified, or wrong key)')
    }
    const decipher = createDecipheriv('sm4-ctr', key.subarray(0, 16), iv)
    plaintext = Buffer.concat([decipher.update(body), decipher.final()])
  }
  let event: unknown
  try {
    event = JSON.parse(plaintext.toString('utf8'))
  } catch (cause) {
    throw new AuditIntegrityError(seq, 'decrypted body is not JSON', { cause })
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event) || !('type' in event)) {
    throw new AuditIntegrityError(seq, 'decrypted body is not an audit event')
  }
  if (typeof event.type !== 'string') throw new AuditIntegrityError(seq, 'decrypted body is not an audit event')
  return event as AuditEvent
}

/**
 * Why `value` is not a well-formed entry or checkpoint, or undefined when it is. Strict: unknown
 * fields are refused, because nothing outside the hash may ride along in a tamper-evident log.
 */
export function entryShapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object'
  const e = value as Readonly<Record<string, unknown>>
  if (e.v !== 1) return `unsupported version v=${JSON.stringify(e.v) ?? 'missing'}`
  if (!isPositiveInteger(e.seq)) return 'seq is not a positive integer'
  if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) return 'time is not an ISO 8601 date'
  if (!isHex64(e.prev)) return 'prev is not a 64-digit hex hash'
  if (!isHex64(e.hash)) return 'hash is not a 64-digit hex hash'
  let known: readonly string[]
  if (e.kind === 'entry') {
    if (!isNonEmptyString(e.kid)) return 'kid is missing'
    if (e.alg !== 'aes-256-gcm' && e.alg !== 'sm4-ctr-hmac-sm3') return `unknown alg ${JSON.stringify(e.alg)}`
    if (typeof e.iv !== 'string' || typeof e.body !== 'string' || typeof e.tag !== 'string') {
      return 'iv, body or tag is missing'
    }
    known = ENTRY_FIELDS
  } else if (e.kind === 'checkpoint') {
    if (!isNonEmptyString(e.signer)) return 'signer is missing'
    if (!Number.isSafeInteger(e.upTo) || (e.upTo as number) < 0) return 'upTo is not a sequence number'
    if (!isHex64(e.head)) return 'head is not a 64-digit hex hash'
    if (!isNonEmptyString(e.sig)) return 'sig is missing'
    known = CHECKPOINT_FIELDS
  } else {
    return `unknown kind ${JSON.stringify(e.kind) ?? 'missing'}`
  }
  for (const name of Object.keys(e)) {
    if (name !== 'hash' && !known.includes(name)) return `unexpected field ${name}`
  }
  return undefined
}

/** Strict base64 (standard alphabet, padded, canonical): undefined for anything else. */
export function fromBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64')
  // Non-zero bits in the last character's unused part decode the same: refuse such twins.
  return bytes.toString('base64') === text ? bytes : undefined
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const HEX64 = /^[0-9a-f]{64}$/

function headerBytes(h: Pick<SealedEntry, 'v' | 'seq' | 'time' | 'kind' | 'kid' | 'alg' | 'prev'>): Buffer {
  return Buffer.from(JSON.stringify([h.v, h.seq, h.time, h.kind, h.kid, h.alg, h.prev]), 'utf8')
}

function sm3Mac(macKey: Uint8Array, header: Buffer, iv: Buffer, body: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(header.length)
  return createHmac('sm3', macKey).update(length).update(header).update(iv).update(body).digest()
}

function seqOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const seq = (value as Readonly<Record<string, unknown>>).seq
  return isPositiveInteger(seq) ? seq : undefined
}

function isPositiveInteger(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) > 0
}

function isHex64(x: unknown): x is string {
  return typeof x === 'string' && HEX64.test(x)
}

function isNonEmptyString(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0
}
