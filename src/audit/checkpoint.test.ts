import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { checkpointSignatureValid, signCheckpoint } from './checkpoint.js'
import { entryHash } from './seal.js'
import type { CheckpointVerifier } from './types.js'

const pair = () => generateKeyPairSync('ed25519')
const real = pair()
const signer = { id: 'cp1', privateKey: real.privateKey }
const verifier: CheckpointVerifier = { publicKeys: new Map([['cp1', real.publicKey]]) }
const at = { seq: 11, time: new Date('2025-03-01T00:00:00.000Z'), prev: 'aa'.repeat(32) }
const head = 'aa'.repeat(32)

describe('signCheckpoint / checkpointSignatureValid', () => {
  const cp = signCheckpoint(at, 10, head, signer)

  it('signs the documented message with Ed25519 and chains like an entry', () => {
    expect(cp).toMatchObject({ v: 1, seq: 11, kind: 'checkpoint', signer: 'cp1', upTo: 10, head, prev: at.prev })
    const message = Buffer.from(`idem-audit-checkpoint\n10\n${head}`)
    expect(verify(null, message, real.publicKey, Buffer.from(cp.sig, 'base64'))).toBe(true)
    const { hash, ...rest } = cp
    expect(hash).toBe(entryHash(rest))
    expect(checkpointSignatureValid(cp, verifier)).toBe(true)
  })

  it('does not verify under another key, for an unknown signer, or with a changed claim', () => {
    expect(checkpointSignatureValid(cp, { publicKeys: new Map([['cp1', pair().publicKey]]) })).toBe(false)
    expect(checkpointSignatureValid({ ...cp, signer: 'cp2' }, verifier)).toBe(false)
    expect(checkpointSignatureValid({ ...cp, upTo: 9 }, verifier)).toBe(false)
    expect(checkpointSignatureValid({ ...cp, head: 'bb'.repeat(32) }, verifier)).toBe(false)
  })

  it('does not verify a flipped or malformed signature', () => {
    const sig = Buffer.from(cp.sig, 'base64')
    sig[5] = (sig[5] as number) ^ 0x80
    expect(checkpointSignatureValid({ ...cp, sig: sig.toString('base64') }, verifier)).toBe(false)
    expect(checkpointSignatureValid({ ...cp, sig: 'not base64!' }, verifier)).toBe(false)
    expect(checkpointSignatureValid({ ...cp, sig: sig.subarray(0, 32).toString('base64') }, verifier)).toBe(false)
  })

  it('refuses a key that is not Ed25519', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
    expect(() => signCheckpoint(at, 10, head, { id: 'r', privateKey: rsa.privateKey })).toThrow(/not an Ed25519/)
    expect(checkpointSignatureValid(cp, { publicKeys: new Map([['cp1', rsa.publicKey]]) })).toBe(false)
  })

  it('is verified by a public key rebuilt from PEM (what a separate verifier holds)', () => {
    const pem = real.publicKey.export({ type: 'spki', format: 'pem' })
    expect(checkpointSignatureValid(cp, { publicKeys: new Map([['cp1', createPublicKey(pem)]]) })).toBe(true)
    const privatePem = real.privateKey.export({ type: 'pkcs8', format: 'pem' })
    const again = signCheckpoint(at, 10, head, { id: 'cp1', privateKey: createPrivateKey(privatePem) })
    expect(again.sig).toBe(cp.sig) // Ed25519 is deterministic
  })
})
