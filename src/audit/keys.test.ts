import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  generateAuditKey,
  generateSigningKeyPair,
  keyringFrom,
  keyringFromFile,
  signerFromPem,
  verifierFromPems,
} from './keys.js'
import { openEntry, sealEntry } from './seal.js'

const b64 = (bytes: number) => randomBytes(bytes).toString('base64')
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idem-audit-keys-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('keyringFrom', () => {
  const k1 = b64(32)
  const k2 = b64(32)

  it('parses ids and keys; the last is active; aes-256-gcm by default', () => {
    const keyring = keyringFrom(`k1:${k1}, k2:${k2}`)
    expect([...keyring.keys.keys()]).toEqual(['k1', 'k2'])
    expect(Buffer.from(keyring.keys.get('k1') as Uint8Array).toString('base64')).toBe(k1)
    expect(keyring.active).toBe('k2')
    expect(keyring.alg).toBe('aes-256-gcm')
  })

  it('takes the active key from the option or from an active= item, and the algorithm', () => {
    expect(keyringFrom(`k1:${k1},k2:${k2}`, 'sm4-ctr-hmac-sm3', 'k1')).toMatchObject({
      active: 'k1',
      alg: 'sm4-ctr-hmac-sm3',
    })
    expect(keyringFrom(`k1:${k1},k2:${k2},active=k1`).active).toBe('k1')
    expect(() => keyringFrom(`k1:${k1}`, undefined, 'k3')).toThrow('active audit key id k3 is not in the keyring')
  })

  it('gives clear errors that name the key id', () => {
    expect(() => keyringFrom('')).toThrow(/keyring is empty/)
    expect(() => keyringFrom(`k1:${k1},k2:${b64(16)}`)).toThrow('audit key k2 has 16 bytes; aes-256-gcm needs 32')
    expect(() => keyringFrom('k1:not*base64')).toThrow('audit key k1 is not valid base64')
    expect(() => keyringFrom('k1:')).toThrow('audit key k1 is empty')
    expect(() => keyringFrom(`k1:${k1},k1:${k2}`)).toThrow('audit key k1 is given twice')
    expect(() => keyringFrom(k1)).toThrow(/has no id/)
    expect(() => keyringFrom(`k1:${k1}`, 'des' as never)).toThrow(/unknown audit algorithm des/)
  })

  it('does not echo key material in errors', () => {
    const secret = b64(31)
    expect(() => keyringFrom(`k1:${secret}`)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(secret) }),
    )
  })
})

describe('keyringFromFile', () => {
  it('reads alg, active and keys', async () => {
    const path = join(dir, 'keys.json')
    await writeFile(path, JSON.stringify({ alg: 'sm4-ctr-hmac-sm3', active: 'a', keys: { a: b64(32), b: b64(32) } }))
    const keyring = await keyringFromFile(path)
    expect(keyring).toMatchObject({ alg: 'sm4-ctr-hmac-sm3', active: 'a' })
    expect(keyring.keys.size).toBe(2)
    await expect(keyringFromFile(path, 'aes-256-gcm')).rejects.toThrow(/says alg sm4-ctr-hmac-sm3/)
  })

  it('names the bad key, a missing active key, and an unreadable file', async () => {
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ active: 'a', keys: { a: b64(32), b: b64(24) } }))
    await expect(keyringFromFile(bad)).rejects.toThrow('audit key b has 24 bytes')
    const noActive = join(dir, 'no-active.json')
    await writeFile(noActive, JSON.stringify({ active: 'z', keys: { a: b64(32) } }))
    await expect(keyringFromFile(noActive)).rejects.toThrow('active audit key id z is not in the keyring')
    await expect(keyringFromFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read the audit keyring file/)
  })
})

describe('generateAuditKey', () => {
  it('makes a fresh 32-byte key that a keyring accepts and that seals', () => {
    const key = generateAuditKey()
    expect(Buffer.from(key, 'base64')).toHaveLength(32)
    expect(generateAuditKey()).not.toBe(key)
    const keyring = keyringFrom(`k1:${key}`)
    const entry = sealEntry({ type: 'executed' }, { seq: 1, time: new Date(), prev: '0'.repeat(64) }, keyring)
    expect(openEntry(entry, keyring)).toEqual({ type: 'executed' })
  })
})

describe('Ed25519 keys for checkpoints', () => {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair()

  it('generateSigningKeyPair gives a PKCS#8 / SPKI pair that signs and verifies', () => {
    expect(privateKeyPem).toContain('-----BEGIN PRIVATE KEY-----')
    expect(publicKeyPem).toContain('-----BEGIN PUBLIC KEY-----')
    const signer = signerFromPem('cp1', privateKeyPem)
    const publicKey = verifierFromPems([['cp1', publicKeyPem]]).publicKeys.get('cp1')
    const sig = sign(null, Buffer.from('m'), signer.privateKey)
    expect(publicKey !== undefined && verify(null, Buffer.from('m'), publicKey, sig)).toBe(true)
  })

  it('reads PEM text or a path to a PEM file', async () => {
    const privatePath = join(dir, 'cp.key')
    const publicPath = join(dir, 'cp.pub')
    await writeFile(privatePath, privateKeyPem)
    await writeFile(publicPath, publicKeyPem)
    expect(signerFromPem('cp1', privatePath).privateKey.asymmetricKeyType).toBe('ed25519')
    expect(verifierFromPems([['cp1', publicPath]]).publicKeys.get('cp1')?.asymmetricKeyType).toBe('ed25519')
    expect(() => signerFromPem('cp1', join(dir, 'nope.pem'))).toThrow(/checkpoint signer cp1: cannot read the PEM file/)
  })

  it('refuses the wrong kind of key, naming the signer', () => {
    const rsa = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    })
    expect(() => signerFromPem('cp1', rsa.privateKey)).toThrow('checkpoint signer cp1: the key is rsa, not Ed25519')
    expect(() => verifierFromPems([['cp2', rsa.publicKey]])).toThrow(
      'checkpoint signer cp2: the key is rsa, not Ed25519',
    )
    expect(() => signerFromPem('cp1', publicKeyPem)).toThrow('checkpoint signer cp1: not a PEM private key')
    expect(() => verifierFromPems([['cp1', privateKeyPem]])).toThrow(/private key was given/)
    expect(() =>
      verifierFromPems([
        ['cp1', publicKeyPem],
        ['cp1', publicKeyPem],
      ]),
    ).toThrow(/given twice/)
  })
})
