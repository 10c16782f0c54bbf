import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { signCheckpoint } from './checkpoint.js'
import { entryHash, GENESIS, sealEntry } from './seal.js'
import type {
  AuditAlgorithm,
  AuditEntry,
  AuditEvent,
  AuditKeyring,
  CheckpointEntry,
  CheckpointSigner,
  CheckpointVerifier,
  SealedEntry,
} from './types.js'
import { verifyAuditLog } from './verify.js'

type Item = AuditEntry | { torn: string; position: number }

const real = generateKeyPairSync('ed25519')
const signer: CheckpointSigner = { id: 'cp1', privateKey: real.privateKey }
const verifier: CheckpointVerifier = { publicKeys: new Map([['cp1', real.publicKey]]) }
const keyringOf = (alg: AuditAlgorithm = 'aes-256-gcm'): AuditKeyring => ({
  keys: new Map([
    ['k1', randomBytes(32)],
    ['k2', randomBytes(32)],
  ]),
  active: 'k1',
  alg,
})
const keyring = keyringOf()
const start = Date.parse('2025-03-01T00:00:00.000Z')

/**
 * 53 items: a checkpoint at every multiple of 10 (10, 20, 30, 40, 50) covering the item before
 * it; entries everywhere else; 51–53 are not covered by any checkpoint yet.
 */
function buildLog(
  options: {
    keyring?: AuditKeyring
    signer?: CheckpointSigner
    count?: number
    event?: (seq: number) => AuditEvent
  } = {},
): AuditEntry[] {
  const ring = options.keyring ?? keyring
  const by = options.signer ?? signer
  const event = options.event ?? ((seq: number) => ({ type: 'executed', route: 'POST /pay', key: `key-${seq}` }))
  const log: AuditEntry[] = []
  let prev = GENESIS
  for (let seq = 1; seq <= (options.count ?? 53); seq++) {
    const at = { seq, time: new Date(start + seq * 1000), prev }
    const item = seq % 10 === 0 ? signCheckpoint(at, seq - 1, prev, by) : sealEntry(event(seq), at, ring)
    log.push(item)
    prev = item.hash
  }
  return log
}
const log = buildLog()

/** What an attacker without the signing key can do: recompute `prev`/`hash` (and checkpoint heads) from index `from` on. */
function rechain(items: AuditEntry[], from: number): AuditEntry[] {
  const out = items.map((item) => ({ ...item }))
  for (let i = from; i < out.length; i++) {
    const item = out[i] as AuditEntry
    item.prev = i === 0 ? GENESIS : (out[i - 1] as AuditEntry).hash
    // A checkpoint's claim can be re-pointed too; only its signature cannot be redone.
    if (item.kind === 'checkpoint' && item.upTo === item.seq - 1) item.head = item.prev
    const { hash: _old, ...rest } = item
    item.hash = entryHash(rest)
  }
  return out
}

const flipBase64 = (text: string, index = 0) => {
  const bytes = Buffer.from(text, 'base64')
  bytes[index] = (bytes[index] as number) ^ 0x01
  return bytes.toString('base64')
}
const flipHex = (text: string) => (text[0] === '0' ? '1' : '0') + text.slice(1)
const at = (items: AuditEntry[], seq: number) => items[seq - 1] as AuditEntry
const withItem = (items: AuditEntry[], seq: number, change: Partial<SealedEntry> | Partial<CheckpointEntry>) =>
  items.map((item) => (item.seq === seq ? ({ ...item, ...change } as AuditEntry) : item))

describe('verifyAuditLog: an intact log', () => {
  it.each(['aes-256-gcm', 'sm4-ctr-hmac-sm3'] as const)(
    'holds with %s, counting entries, checkpoints, unsigned',
    async (alg) => {
      const ring = keyringOf(alg)
      const result = await verifyAuditLog(buildLog({ keyring: ring }), { keyring: ring, verifier })
      expect(result).toEqual({ ok: true, entries: 48, checkpoints: 5, signedUpTo: 49, unsigned: 3 })
    },
  )

  it('reads an async iterable (what storage gives) and an empty log', async () => {
    async function* stream() {
      yield* log
    }
    expect((await verifyAuditLog(stream(), { keyring, verifier })).ok).toBe(true)
    expect(await verifyAuditLog([], {})).toEqual({ ok: true, entries: 0, checkpoints: 0, signedUpTo: 0, unsigned: 0 })
  })

  it('accepts a checkpoint kept elsewhere that the log matches', async () => {
    const cp = at(log, 40) as CheckpointEntry
    const result = await verifyAuditLog(log, { verifier, expected: { upTo: cp.upTo, head: cp.head } })
    expect(result.ok).toBe(true)
  })

  it('stops reading at the first bad item and closes the stream', async () => {
    let read = 0
    let closed = false
    const bad = withItem(log, 5, { hash: flipHex(at(log, 5).hash) })
    async function* stream() {
      try {
        for (const item of bad) {
          read++
          yield item
        }
      } finally {
        closed = true
      }
    }
    expect((await verifyAuditLog(stream(), { verifier })).firstBad?.seq).toBe(5)
    expect(read).toBeLessThan(7)
    expect(closed).toBe(true)
  })
})

describe('verifyAuditLog: tampering is detected and named', () => {
  const check = async (items: Item[], options: Parameters<typeof verifyAuditLog>[1] = { keyring, verifier }) => {
    const result = await verifyAuditLog(items, options)
    expect(result.ok).toBe(false)
    return result
  }

  it('one flipped byte of a body', async () => {
    const sealed = at(log, 7) as SealedEntry
    const result = await check(withItem(log, 7, { body: flipBase64(sealed.body, 2) }))
    expect(result.firstBad).toEqual({
      seq: 7,
      position: 7,
      reason: 'entry 7: hash does not match its content (modified?)',
    })
    expect(result.entries).toBe(6)
  })

  it('a flipped body whose hash was recomputed: the next entry’s prev breaks; with the keyring, the tag', async () => {
    const sealed = at(log, 7) as SealedEntry
    const forged = rechain(withItem(log, 7, { body: flipBase64(sealed.body, 2) }), 6)
    // Only entry 7 re-hashed: the chain breaks at 8.
    const patched = log.map((item, i) => (i === 6 ? (forged[6] as AuditEntry) : item))
    const onlyOne = await check(patched, { verifier })
    expect(onlyOne.firstBad?.seq).toBe(8)
    expect(onlyOne.firstBad?.reason).toBe(
      'entry 8: prev does not match the hash of entry 7 (chain broken: an entry modified, replaced or inserted?)',
    )
    // The whole chain re-hashed: the tag gives the body away (with the keyring) …
    const withKeys = await check(forged)
    expect(withKeys.firstBad).toMatchObject({ seq: 7, position: 7 })
    expect(withKeys.firstBad?.reason).toMatch(/^entry 7: tag does not verify/)
    // … and the checkpoint without it.
    const withoutKeys = await check(forged, { verifier })
    expect(withoutKeys.firstBad?.seq).toBe(10)
    expect(withoutKeys.firstBad?.reason).toBe(
      'checkpoint 10: signature does not verify (chain rebuilt without the signing key?)',
    )
  })

  it('one flipped hex digit of a hash', async () => {
    const result = await check(withItem(log, 12, { hash: flipHex(at(log, 12).hash) }))
    expect(result.firstBad).toEqual({
      seq: 12,
      position: 12,
      reason: 'entry 12: hash does not match its content (modified?)',
    })
  })

  it('one flipped byte of a signature (hash left alone, or recomputed with the chain after it)', async () => {
    const cp = at(log, 20) as CheckpointEntry
    const flipped = withItem(log, 20, { sig: flipBase64(cp.sig, 10) })
    const left = await check(flipped)
    expect(left.firstBad?.reason).toBe('checkpoint 20: hash does not match its content (modified?)')
    const rehashed = await check(rechain(flipped, 19))
    expect(rehashed.firstBad).toEqual({
      seq: 20,
      position: 20,
      reason: 'checkpoint 20: signature does not verify (chain rebuilt without the signing key?)',
    })
    expect(rehashed.signedUpTo).toBe(9)
    expect(rehashed.checkpoints).toBe(1)
  })

  it('an entry deleted in the middle', async () => {
    const result = await check(log.filter((item) => item.seq !== 25))
    expect(result.firstBad).toEqual({ seq: 26, position: 25, reason: 'entry 26 follows 24: entry 25 is missing' })
  })

  it('several entries deleted, and the first entries deleted', async () => {
    const middle = await check(log.filter((item) => item.seq < 25 || item.seq > 27))
    expect(middle.firstBad?.reason).toBe('entry 28 follows 24: entries 25 to 27 are missing')
    const head = await check(log.slice(2))
    expect(head.firstBad).toEqual({
      seq: 3,
      position: 1,
      reason: 'the log starts with entry 3: entries 1 to 2 are missing',
    })
  })

  it('two entries swapped', async () => {
    const swapped = [...log]
    ;[swapped[32], swapped[33]] = [log[33] as AuditEntry, log[32] as AuditEntry]
    const result = await check(swapped)
    expect(result.firstBad).toEqual({
      seq: 34,
      position: 33,
      reason: 'entry 34 follows 32: entries 33 and 34 are swapped (reordered)',
    })
  })

  it('an entry repeated', async () => {
    const result = await check([...log.slice(0, 15), log[13] as AuditEntry, ...log.slice(15)])
    expect(result.firstBad).toEqual({
      seq: 14,
      position: 16,
      reason: 'entry 14 follows 15: out of order (entry 14 duplicated or moved; reordered?)',
    })
  })

  it('the tail truncated: detected with a checkpoint kept elsewhere, else only visible as unsigned', async () => {
    const cut = log.slice(0, 45)
    const last = at(log, 50) as CheckpointEntry // the checkpoint that was cut, kept elsewhere
    const detected = await check(cut, { keyring, verifier, expected: { upTo: last.upTo, head: last.head } })
    expect(detected.firstBad).toEqual({
      seq: 46,
      position: 46,
      reason:
        'the log ends at entry 45 but a checkpoint kept elsewhere covers entry 49: entries 46 to 49 are missing (tail truncated?)',
    })
    const unseen = await verifyAuditLog(cut, { keyring, verifier })
    expect(unseen).toEqual({ ok: true, entries: 41, checkpoints: 4, signedUpTo: 39, unsigned: 5 })
  })

  it('history rewritten under a checkpoint kept elsewhere', async () => {
    const rebuilt = buildLog({ event: () => ({ type: 'forged' }) })
    const kept = at(log, 30) as CheckpointEntry
    const result = await check(rebuilt, { keyring, verifier, expected: { upTo: kept.upTo, head: kept.head } })
    expect(result.firstBad).toMatchObject({
      seq: 29,
      reason: 'entry 29: hash differs from the checkpoint kept elsewhere (history rewritten?)',
    })
  })

  it('the whole chain rebuilt and re-signed with another key under the same signer id', async () => {
    const forger: CheckpointSigner = { id: 'cp1', privateKey: generateKeyPairSync('ed25519').privateKey }
    // The forger even holds the encryption keys: every entry, hash and tag is consistent.
    const forged = buildLog({ signer: forger, event: (seq) => ({ type: seq === 5 ? 'forged' : 'executed' }) })
    const result = await check(forged)
    expect(result.firstBad).toEqual({
      seq: 10,
      position: 10,
      reason: 'checkpoint 10: signature does not verify (chain rebuilt without the signing key?)',
    })
    expect(result.entries).toBe(9)
    expect(result.signedUpTo).toBe(0)
  })

  it('a checkpoint whose signer is unknown, or with no verifier at all', async () => {
    const other = await check(log, { keyring, verifier: { publicKeys: new Map([['cp9', real.publicKey]]) } })
    expect(other.firstBad).toEqual({
      seq: 10,
      position: 10,
      reason: 'checkpoint 10: cannot check checkpoint signature: no public key for signer cp1',
    })
    const none = await check(log, { keyring })
    expect(none.firstBad?.reason).toBe('checkpoint 10: cannot check checkpoint signature: no public key for signer cp1')
  })

  it('a checkpoint that claims another range', async () => {
    const cp = at(log, 30) as CheckpointEntry
    const lying = signCheckpoint({ seq: 30, time: new Date(cp.time), prev: cp.prev }, 28, at(log, 28).hash, signer)
    const result = await check(
      rechain(
        log.map((item) => (item.seq === 30 ? lying : item)),
        29,
      ),
    )
    expect(result.firstBad?.reason).toBe('checkpoint 30: covers entries up to 28 but follows entry 29')
  })

  it('a key id replaced: with another key of the keyring, or with an unknown one', async () => {
    const swappedKid = await check(rechain(withItem(log, 14, { kid: 'k2' }), 13))
    expect(swappedKid.firstBad).toMatchObject({ seq: 14, position: 14 })
    expect(swappedKid.firstBad?.reason).toMatch(/^entry 14: tag does not verify/)
    const unknown = await check(rechain(withItem(log, 14, { kid: 'k9' }), 13))
    expect(unknown.firstBad).toEqual({ seq: 14, position: 14, reason: 'entry 14: key id k9 is not in the keyring' })
    // Without re-hashing, the hash gives it away even without the keyring.
    const plain = await check(withItem(log, 14, { kid: 'k9' }), { verifier })
    expect(plain.firstBad?.reason).toBe('entry 14: hash does not match its content (modified?)')
  })

  it('an item that is not an entry', async () => {
    const broken = log.map((item) => (item.seq === 3 ? ({ ...item, v: 2 } as unknown as AuditEntry) : item))
    const result = await check(broken)
    expect(result.firstBad).toEqual({
      seq: 3,
      position: 3,
      reason: 'entry 3: not a valid entry: unsupported version v=2',
    })
  })
})

describe('verifyAuditLog: torn items', () => {
  it('a torn last line is reported, not accepted, and does not fail what is before it', async () => {
    const items: Item[] = [...log, { torn: '{"v":1,"seq":54,"ti', position: 54 }]
    const result = await verifyAuditLog(items, { keyring, verifier })
    expect(result).toEqual({
      ok: true,
      entries: 48,
      checkpoints: 5,
      signedUpTo: 49,
      unsigned: 3,
      tornTail: { position: 54 },
    })
  })

  it('a torn last line after a bad entry still fails', async () => {
    const items: Item[] = [...withItem(log, 53, { hash: flipHex(at(log, 53).hash) }), { torn: '{', position: 54 }]
    const result = await verifyAuditLog(items, { keyring, verifier })
    expect(result.ok).toBe(false)
    expect(result.firstBad?.seq).toBe(53)
  })

  it('a torn line in the middle is a failure', async () => {
    const items: Item[] = [...log.slice(0, 20), { torn: 'garbage', position: 21 }, ...log.slice(20)]
    const result = await verifyAuditLog(items, { keyring, verifier })
    expect(result.ok).toBe(false)
    expect(result.tornTail).toBeUndefined()
    expect(result.firstBad).toEqual({
      seq: undefined,
      position: 21,
      reason: 'item at position 21 (after entry 20) is not a complete entry, and entries follow it (corrupted?)',
    })
  })
})

describe('verifyAuditLog with signatures: false', () => {
  it('checks the chain and the MACs but not the signatures, and says so', async () => {
    const cp = at(log, 20) as CheckpointEntry
    // A signature that does not verify, with the chain recomputed after it (the later tags break
    // too, so no keyring here): only a signature check sees it.
    const forged = rechain(withItem(log, 20, { sig: flipBase64(cp.sig, 10) }), 19)
    expect((await verifyAuditLog(forged, { verifier })).firstBad?.reason).toMatch(/signature does not verify/)
    const unchecked = await verifyAuditLog(forged, { signatures: false })
    expect(unchecked).toEqual({
      ok: true,
      entries: 48,
      checkpoints: 5,
      signedUpTo: 0,
      unsigned: 3,
      signatures: 'not checked',
    })
    // Everything else still holds: a changed body, a checkpoint covering another range.
    const body = at(log, 5) as SealedEntry
    const changed = await verifyAuditLog(withItem(log, 5, { body: flipBase64(body.body) }), {
      keyring,
      signatures: false,
    })
    expect(changed.firstBad?.seq).toBe(5)
    const lying = signCheckpoint(
      { seq: 30, time: new Date(cp.time), prev: at(log, 29).hash },
      28,
      at(log, 28).hash,
      signer,
    )
    const range = await verifyAuditLog(
      rechain(
        log.map((item) => (item.seq === 30 ? lying : item)),
        29,
      ),
      { signatures: false },
    )
    expect(range.firstBad?.reason).toBe('checkpoint 30: covers entries up to 28 but follows entry 29')
  })
})
