// Loading the audit log's keys: symmetric keyrings for the bodies, Ed25519 key pairs for the
// checkpoints. Errors name the key id and never echo key material.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fromBase64, KEY_BYTES } from './seal.js'
import type { AuditAlgorithm, AuditKeyring, CheckpointSigner, CheckpointVerifier } from './types.js'

const ALGORITHMS: readonly AuditAlgorithm[] = ['aes-256-gcm', 'sm4-ctr-hmac-sm3']
/** Key ids end up in every entry and in error messages: keep them short and plain. */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/**
 * A keyring from `"k1:<base64>,k2:<base64>"`. The last key is active (rotation = append a key)
 * unless `active` names another; an `active=k1` item inside the spec does the same, so that one
 * environment variable can carry the whole keyring.
 */
export function keyringFrom(spec: string, alg: AuditAlgorithm = 'aes-256-gcm', active?: string): AuditKeyring {
  checkAlgorithm(alg)
  const keys = new Map<string, Uint8Array>()
  let activeInSpec: string | undefined
  const items = spec
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0)
  for (const item of items) {
    if (item.startsWith('active=')) {
      activeInSpec = item.slice('active='.length).trim()
      continue
    }
    const colon = item.indexOf(':')
    if (colon < 0) throw new Error(`audit key "${item.slice(0, 16)}…" has no id: write <id>:<base64 key>`)
    addKey(keys, item.slice(0, colon).trim(), item.slice(colon + 1).trim(), alg)
  }
  if (keys.size === 0) throw new Error('the audit keyring is empty: give at least one <id>:<base64 key>')
  return { keys, active: pickActive(keys, active ?? activeInSpec), alg }
}

/** A keyring from a JSON file: `{ "alg"?, "active", "keys": { "k1": "<base64>" } }`. */
export async function keyringFromFile(path: string, alg?: AuditAlgorithm): Promise<AuditKeyring> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (cause) {
    throw new Error(`cannot read the audit keyring file ${path}: ${(cause as Error).message}`, { cause })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`audit keyring file ${path}: expected a JSON object { "active", "keys" }`)
  }
  const file = parsed as Readonly<Record<string, unknown>>
  if (file.alg !== undefined && typeof file.alg !== 'string') throw new Error(`audit keyring file ${path}: bad "alg"`)
  if (alg !== undefined && file.alg !== undefined && alg !== file.alg) {
    throw new Error(`audit keyring file ${path} says alg ${file.alg} but ${alg} was asked for`)
  }
  const chosen = (alg ?? file.alg ?? 'aes-256-gcm') as AuditAlgorithm
  checkAlgorithm(chosen)
  if (typeof file.keys !== 'object' || file.keys === null || Array.isArray(file.keys)) {
    throw new Error(`audit keyring file ${path}: "keys" must be an object of id → base64 key`)
  }
  const keys = new Map<string, Uint8Array>()
  for (const [id, value] of Object.entries(file.keys)) {
    if (typeof value !== 'string') throw new Error(`audit key ${id}: the key must be a base64 string`)
    addKey(keys, id, value, chosen)
  }
  if (keys.size === 0) throw new Error(`audit keyring file ${path} has no keys`)
  if (file.active !== undefined && typeof file.active !== 'string') {
    throw new Error(`audit keyring file ${path}: "active" must be a key id`)
  }
  return { keys, active: pickActive(keys, file.active), alg: chosen }
}

/** A new symmetric key: base64 of 32 random bytes (fits both algorithms). */
export function generateAuditKey(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

/** The checkpoint signer from an Ed25519 private key: PEM text, or the path of a PEM file. */
export function signerFromPem(id: string, pem: string): CheckpointSigner {
  checkKeyId(id, 'checkpoint signer')
  const text = pemText(pem, `checkpoint signer ${id}`)
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(text)
  } catch (cause) {
    throw new Error(`checkpoint signer ${id}: not a PEM private key`, { cause })
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`checkpoint signer ${id}: the key is ${privateKey.asymmetricKeyType ?? 'unknown'}, not Ed25519`)
  }
  return { id, privateKey }
}

/** Public keys by signer id, each PEM text or the path of a PEM file. */
export function verifierFromPems(entries: Array<[id: string, pemOrPath: string]>): CheckpointVerifier {
  const publicKeys = new Map<string, KeyObject>()
  for (const [id, pem] of entries) {
    checkKeyId(id, 'checkpoint signer')
    if (publicKeys.has(id)) throw new Error(`checkpoint signer ${id} is given twice`)
    const text = pemText(pem, `checkpoint signer ${id}`)
    // createPublicKey would derive a public key from a private one; a verifier should never hold it.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw new Error(`checkpoint signer ${id}: a private key was given where the public key is expected`)
    }
    let publicKey: KeyObject
    try {
      publicKey = createPublicKey(text)
    } catch (cause) {
      throw new Error(`checkpoint signer ${id}: not a PEM public key`, { cause })
    }
    if (publicKey.asymmetricKeyType !== 'ed25519') {
      throw new Error(`checkpoint signer ${id}: the key is ${publicKey.asymmetricKeyType ?? 'unknown'}, not Ed25519`)
    }
    publicKeys.set(id, publicKey)
  }
  return { publicKeys }
}

/** A new Ed25519 key pair for checkpoints: PKCS#8 private, SPKI public, both PEM. */
export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  return { privateKeyPem: privateKey, publicKeyPem: publicKey }
}

function addKey(keys: Map<string, Uint8Array>, id: string, base64: string, alg: AuditAlgorithm): void {
  checkKeyId(id, 'audit key')
  if (keys.has(id)) throw new Error(`audit key ${id} is given twice`)
  if (base64.length === 0) throw new Error(`audit key ${id} is empty`)
  const bytes = fromBase64(base64)
  if (bytes === undefined) throw new Error(`audit key ${id} is not valid base64`)
  if (bytes.length !== KEY_BYTES) {
    throw new Error(
      `audit key ${id} has ${bytes.length} bytes; ${alg} needs ${KEY_BYTES} (generate one with 32 random bytes)`,
    )
  }
  keys.set(id, new Uint8Array(bytes))
}

function pickActive(keys: ReadonlyMap<string, Uint8Array>, active: string | undefined): string {
  if (active === undefined) return [...keys.keys()].at(-1) as string
  if (!keys.has(active)) throw new Error(`active audit key id ${active} is not in the keyring`)
  return active
}

function checkKeyId(id: string, what: string): void {
  if (!KEY_ID.test(id)) {
    throw new Error(`${what} id ${JSON.stringify(id)} is not valid: letters, digits, ".", "_", "-" (up to 64)`)
  }
}

function checkAlgorithm(alg: string): asserts alg is AuditAlgorithm {
  if (!ALGORITHMS.includes(alg as AuditAlgorithm)) {
    throw new Error(`unknown audit algorithm ${alg}: use ${ALGORITHMS.join(' or ')}`)
  }
}

/** PEM text as given, or read from the path given (a PEM always contains "-----BEGIN"). */
function pemText(pemOrPath: string, what: string): string {
  if (pemOrPath.includes('-----BEGIN')) return pemOrPath
  try {
    return readFileSync(pemOrPath, 'utf8')
  } catch (cause) {
    throw new Error(`${what}: cannot read the PEM file ${pemOrPath}: ${(cause as Error).message}`, { cause })
  }
}
