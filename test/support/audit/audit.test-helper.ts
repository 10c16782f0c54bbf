// Shared by the audit storage and writer tests: keys, a chain of sealed entries, a scratch directory.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  generateAuditKey,
  generateSigningKeyPair,
  keyringFrom,
  signerFromPem,
  verifierFromPems,
} from '../../../src/audit/keys.js'
import { GENESIS, sealEntry } from '../../../src/audit/seal.js'
import type { AuditEntry, AuditStorage, SealedEntry } from '../../../src/audit/types.js'
import { verifyAuditLog } from '../../../src/audit/verify.js'

export const KEYS_SPEC = `k1:${generateAuditKey()}`
export const keyring = keyringFrom(KEYS_SPEC)
const pair = generateSigningKeyPair()
export const SIGNER_PEM = pair.privateKeyPem
export const signer = signerFromPem('cp1', pair.privateKeyPem)
export const verifier = verifierFromPems([['cp1', pair.publicKeyPem]])

/** `count` entries chained after `after` (or from the start). */
export function chain(count: number, after?: AuditEntry, detail: Record<string, unknown> = {}): SealedEntry[] {
  const entries: SealedEntry[] = []
  let seq = after?.seq ?? 0
  let prev = after?.hash ?? GENESIS
  for (let i = 0; i < count; i++) {
    const entry = sealEntry(
      { type: 'executed', n: seq + 1, ...detail },
      { seq: seq + 1, time: new Date(), prev },
      keyring,
    )
    entries.push(entry)
    seq = entry.seq
    prev = entry.hash
  }
  return entries
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

/** Verify everything the storage holds, bodies and signatures included. */
export function verifyStorage(storage: AuditStorage) {
  return verifyAuditLog(storage.read(), { keyring, verifier })
}

/** A fresh directory under the OS temp dir, and a function removing it. */
export async function scratchDir(): Promise<{
  dir: string
  file: (name: string) => string
  remove: () => Promise<void>
}> {
  const dir = await mkdtemp(join(tmpdir(), 'idem-audit-'))
  return { dir, file: (name) => join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * Storage in memory, with hooks to hold or fail appends: `gate` (appends wait for it),
 * `failNext` (appends throw before storing), `failAfterStoring` (store, then throw: a lost reply).
 */
export class MemoryAuditStorage implements AuditStorage {
  readonly entries: AuditEntry[] = []
  appends = 0
  closed = false
  gate: Promise<void> | undefined
  failNext = 0
  failAfterStoring = 0

  async last(): Promise<AuditEntry | undefined> {
    return this.entries.at(-1)
  }

  async append(entries: readonly AuditEntry[]): Promise<void> {
    this.appends++
    await this.gate
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('storage unavailable')
    }
    this.entries.push(...entries)
    if (this.failAfterStoring > 0) {
      this.failAfterStoring--
      throw new Error('connection lost after the write')
    }
  }

  async *read(): AsyncIterable<AuditEntry> {
    yield* this.entries
  }

  async close(): Promise<void> {
    this.closed = true
  }
}

/** A promise and the function that resolves it. */
export function latch(): { promise: Promise<void>; open: () => void } {
  let open = () => {}
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}
