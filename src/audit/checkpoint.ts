// Checkpoints: an Ed25519 signature over "entries up to `upTo` hash to `head`". The encryption
// keys authenticate each body, but whoever holds them (or nobody, for the hashes) could rebuild
// the whole chain; a signature by a key the writer keeps apart is what makes a rebuilt chain, or
// a tail cut before a checkpoint, detectable.

import { sign, verify } from 'node:crypto'
import { entryHash } from './seal.js'
import type { CheckpointEntry, CheckpointSigner, CheckpointVerifier } from './types.js'

/** The signed message, exactly as documented in types.ts. */
export function checkpointMessage(upTo: number, head: string): Buffer {
  return Buffer.from(`idem-audit-checkpoint\n${upTo}\n${head}`, 'utf8')
}

/** A checkpoint at `at` (its own place in the chain) saying entries up to `upTo` hash to `head`. */
export function signCheckpoint(
  at: { seq: number; time: Date; prev: string },
  upTo: number,
  head: string,
  signer: CheckpointSigner,
): CheckpointEntry {
  if (signer.privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`checkpoint signer ${signer.id}: the key is not an Ed25519 private key`)
  }
  // Ed25519 takes no digest name: the algorithm fixes its own hashing.
  const sig = sign(null, checkpointMessage(upTo, head), signer.privateKey).toString('base64')
  const unhashed = {
    v: 1 as const,
    seq: at.seq,
    time: at.time.toISOString(),
    kind: 'checkpoint' as const,
    signer: signer.id,
    prev: at.prev,
    upTo,
    head,
    sig,
  }
  return { ...unhashed, hash: entryHash(unhashed) }
}

/**
 * Whether the checkpoint's signature verifies under the public key for its signer. False for an
 * unknown signer too; callers that must say which (verifyAuditLog) look the signer up first.
 */
export function checkpointSignatureValid(entry: CheckpointEntry, verifier: CheckpointVerifier): boolean {
  const publicKey = verifier.publicKeys.get(entry.signer)
  if (publicKey === undefined || publicKey.asymmetricKeyType !== 'ed25519') return false
  if (typeof entry.sig !== 'string') return false
  const sig = Buffer.from(entry.sig, 'base64')
  // An Ed25519 signature is 64 bytes; refusing other lengths (and non-canonical base64) early is cheaper than failing in verify.
  if (sig.length !== 64 || sig.toString('base64') !== entry.sig) return false
  try {
    return verify(null, checkpointMessage(entry.upTo, entry.head), publicKey, sig)
  } catch {
    return false
  }
}
