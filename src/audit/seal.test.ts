import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { AuditIntegrityError } from './errors.js'
import { entryHash, GENESIS, openEntry, sealEntry } from './seal.js'
import type { AuditAlgorithm, AuditKeyring, SealedEntry } from './types.js'

const hex = (text: string) => Buffer.from(text, 'hex')

describe('the primitives are the standards’', () => {
  it('SM4 (GB/T 32907-2016 example): 0123456789abcdeffedcba9876543210 → 681edf34d206965e86b3e94f536e4246', () => {
    const key = hex('0123456789abcdeffedcba9876543210')
    const cipher = createCipheriv('sm4-ecb', key, null)
    cipher.setAutoPadding(false)
    const out = Buffer.concat([cipher.update(key), cipher.final()])
    expect(out.toString('hex')).toBe('681edf34d206965e86b3e94f536e4246')
  })

  it('SM3 (GB/T 32905-2016 examples): "abc" and "abcd"×16', () => {
    expect(createHash('sm3').update('abc').digest('hex')).toBe(
      '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0',
    )
    expect(createHash('sm3').update('abcd'.repeat(16)).digest('hex')).toBe(
      'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732',
    )
  })

  it('AES-256-GCM (NIST GCM spec, test case 14: zero key, zero IV, one zero block)', () => {
    const cipher = createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12))
    const out = Buffer.concat([cipher.update(Buffer.alloc(16)), cipher.final()])
    expect(out.toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18')
    expect(cipher.getAuthTag().toString('hex')).toBe('d0d1c8a799996bf0265b98b5d48ab919')
  })
})

const ALGS: AuditAlgorithm[] = ['aes-256-gcm', 'sm4-ctr-hmac-sm3']
const at = { seq: 7, time: new Date('2025-03-01T12:00:00.123Z'), prev: 'ab'.repeat(32) }
const event = { type: 'rejected', route: 'POST /pay', key: 'k-123', code: 'FINGERPRINT_MISMATCH', status: 422 }

function keyringOf(alg: AuditAlgorithm): AuditKeyring {
  const k1 = randomBytes(32)
  // k2 has the same bytes as k1: a changed `kid` can then only be caught by header authentication.
  return {
    keys: new Map([
      ['k1', k1],
      ['k2', Uint8Array.from(k1)],
    ]),
    active: 'k1',
    alg,
  }
}

/** Flip one bit of byte `index` of a base64 field. */
function flip(base64: string, index = 0): string {
  const bytes = Buffer.from(base64, 'base64')
  bytes[index] = (bytes[index] as number) ^ 0x01
  return bytes.toString('base64')
}

function integrityError(run: () => unknown): AuditIntegrityError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(AuditIntegrityError)
    return error as AuditIntegrityError
  }
  throw new Error('expected an AuditIntegrityError')
}

describe.each(ALGS)('sealEntry / openEntry with %s', (alg) => {
  const keyring = keyringOf(alg)
  const sealed = sealEntry(event, at, keyring)
  const badAuth = /^(tag|MAC) does not verify/

  it('round-trips, with the documented header and a hash over the entry', () => {
    expect(sealed).toMatchObject({ v: 1, seq: 7, time: '2025-03-01T12:00:00.123Z', kind: 'entry', kid: 'k1', alg })
    expect(sealed.prev).toBe(at.prev)
    expect(Buffer.from(sealed.iv, 'base64')).toHaveLength(alg === 'aes-256-gcm' ? 12 : 16)
    expect(sealed.body).not.toContain('k-123')
    expect(openEntry(sealed, keyring)).toEqual(event)
    const { hash, ...rest } = sealed
    expect(hash).toBe(entryHash(rest))
  })

  it('uses a fresh random IV each time', () => {
    const again = sealEntry(event, at, keyring)
    expect(again.iv).not.toBe(sealed.iv)
    expect(again.body).not.toBe(sealed.body)
  })

  it.each(['body', 'iv', 'tag'] as const)('detects a flipped byte in %s', (field) => {
    const error = integrityError(() => openEntry({ ...sealed, [field]: flip(sealed[field], 3) }, keyring))
    expect(error.seq).toBe(7)
    expect(error.reason).toMatch(badAuth)
  })

  it.each([
    ['seq', { seq: 8 }],
    ['time', { time: '2025-03-01T12:00:00.124Z' }],
    ['prev', { prev: 'cd'.repeat(32) }],
    ['kid (same key bytes)', { kid: 'k2' }],
  ])('detects a changed header field: %s', (_name, change) => {
    const error = integrityError(() => openEntry({ ...sealed, ...change }, keyring))
    expect(error.reason).toMatch(badAuth)
  })

  it('detects a body moved under another entry’s header', () => {
    const other = sealEntry(event, { ...at, seq: 8 }, keyring)
    const moved: SealedEntry = { ...other, iv: sealed.iv, body: sealed.body, tag: sealed.tag }
    expect(integrityError(() => openEntry(moved, keyring)).reason).toMatch(badAuth)
  })

  it('names an unknown key id', () => {
    const error = integrityError(() => openEntry({ ...sealed, kid: 'k9' }, keyring))
    expect(error.reason).toBe('key id k9 is not in the keyring')
    expect(error.message).toBe('audit entry 7: key id k9 is not in the keyring')
  })

  it('detects the wrong key', () => {
    const other: AuditKeyring = { ...keyring, keys: new Map([['k1', randomBytes(32)]]) }
    expect(integrityError(() => openEntry(sealed, other)).reason).toMatch(badAuth)
  })

  it('refuses a truncated tag and a bad shape', () => {
    const short = Buffer.from(sealed.tag, 'base64').subarray(0, 8).toString('base64')
    expect(integrityError(() => openEntry({ ...sealed, tag: short }, keyring)).reason).toMatch(/wrong length/)
    const bad = { ...sealed, seq: 'seven' } as unknown as SealedEntry
    expect(integrityError(() => openEntry(bad, keyring)).reason).toMatch(/^not a valid entry: seq/)
    const extra = { ...sealed, note: 'x' } as SealedEntry
    expect(integrityError(() => openEntry(extra, keyring)).reason).toMatch(/unexpected field note/)
  })
})

describe('the documented constructions', () => {
  it('sm4-ctr-hmac-sm3: SM4-CTR with key bytes 0–15, HMAC-SM3 with 16–31 over len ‖ header ‖ iv ‖ body', () => {
    const keyring = keyringOf('sm4-ctr-hmac-sm3')
    const key = keyring.keys.get('k1') as Uint8Array
    const sealed = sealEntry(event, at, keyring)
    const iv = Buffer.from(sealed.iv, 'base64')
    const body = Buffer.from(sealed.body, 'base64')
    const decipher = createDecipheriv('sm4-ctr', key.subarray(0, 16), iv)
    expect(JSON.parse(Buffer.concat([decipher.update(body), decipher.final()]).toString())).toEqual(event)
    const header = Buffer.from(JSON.stringify([1, 7, sealed.time, 'entry', 'k1', 'sm4-ctr-hmac-sm3', at.prev]))
    const length = Buffer.alloc(4)
    length.writeUInt32BE(header.length)
    const mac = createHmac('sm3', key.subarray(16)).update(length).update(header).update(iv).update(body).digest()
    expect(sealed.tag).toBe(mac.toString('base64'))
  })

  it('entryHash: SHA-256 of the JSON array of values in the documented order, whatever the key order', () => {
    const entry = {
      tag: 't',
      body: 'b',
      iv: 'i',
      prev: GENESIS,
      alg: 'aes-256-gcm' as const,
      kid: 'k1',
      kind: 'entry' as const,
      time: '2025-01-01T00:00:00.000Z',
      seq: 1,
      v: 1 as const,
    }
    const canonical = `[1,1,"2025-01-01T00:00:00.000Z","entry","k1","aes-256-gcm","${GENESIS}","i","b","t"]`
    expect(entryHash(entry)).toBe(createHash('sha256').update(canonical).digest('hex'))
    expect(entryHash({ ...entry, body: 'c' })).not.toBe(entryHash(entry))
    const checkpoint = {
      v: 1 as const,
      seq: 2,
      time: '2025-01-01T00:00:00.000Z',
      kind: 'checkpoint' as const,
      signer: 's',
      prev: GENESIS,
      upTo: 1,
      head: GENESIS,
      sig: 'x',
    }
    const canonicalCp = `[1,2,"2025-01-01T00:00:00.000Z","checkpoint","s","${GENESIS}",1,"${GENESIS}","x"]`
    expect(entryHash(checkpoint)).toBe(createHash('sha256').update(canonicalCp).digest('hex'))
  })

  it('sealEntry refuses an active key that is missing or the wrong size', () => {
    const keyring = keyringOf('aes-256-gcm')
    expect(() => sealEntry(event, at, { ...keyring, active: 'k7' })).toThrow(/k7 is not in the keyring/)
    const short: AuditKeyring = { ...keyring, keys: new Map([['k1', randomBytes(16)]]) }
    expect(() => sealEntry(event, at, short)).toThrow(/k1 has 16 bytes/)
  })
})
