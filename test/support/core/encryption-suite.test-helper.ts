// The behaviours of the `encryption` option, run unchanged on every store it is tested on: round
// trips of values and stored errors, key rotation, an altered or moved stored result, and what the
// store's own data holds (`dump`: every byte the server keeps for the suite's records).

import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { IdempotencyStore } from '../../../src/contract/types.js'
import type { EncryptionOptions } from '../../../src/core/encryption.js'
import { Idempotency } from '../../../src/core/idempotency.js'
import type { IdempotencyOptions } from '../../../src/core/options.js'
import {
  EncryptionKeyUnknownError,
  ErrorCode,
  StoredResultAuthenticationError,
  StoredResultNotEncryptedError,
} from '../../../src/errors.js'
import { codeOf } from './code-of.test-helper.js'
import { flipCharacter, readResult, writeResult } from './stored-result.test-helper.js'

export interface EncryptionRig {
  store: IdempotencyStore
  /** Everything the server holds for this rig's records, as text (keys, fields, rows). */
  dump(): Promise<string>
  cleanup(): Promise<void>
}

export const K1 = randomBytes(32)
export const K2 = randomBytes(32).toString('base64')
export const ONLY_K1: EncryptionOptions = { keys: { k1: K1 }, current: 'k1' }
export const ROTATED: EncryptionOptions = { keys: { k1: K1, k2: K2 }, current: 'k2' }
export const ONLY_K2: EncryptionOptions = { keys: { k2: K2 }, current: 'k2' }

/** A recognisable secret inside a result, to look for in the store's data. */
export const SECRET = 'card-4242-4242-4242-4242'

class CardDeclinedError extends Error {
  override name = 'CardDeclinedError'
  constructor(readonly reason: string) {
    super(`card declined: ${reason}`)
  }
}

export function describeEncryption(name: string, makeRig: () => Promise<EncryptionRig>): void {
  describe(`encryption at rest on ${name}`, () => {
    let rig: EncryptionRig
    let n = 0
    /** A fresh key per test: the suite's records never meet. */
    const key = () => `enc-${process.pid}-${++n}`
    const idem = (encryption: EncryptionOptions | undefined, more: Partial<IdempotencyOptions> = {}) =>
      new Idempotency({ store: rig.store, scope: 'pay', encryption, ...more })

    beforeAll(async () => {
      rig = await makeRig()
    })
    afterAll(async () => {
      await rig?.cleanup()
    })

    it('round-trips a value: executed once, replayed equal, stored sealed under the current key', async () => {
      const k = key()
      const value = { card: SECRET, amount: 4200, note: 'caf\u00e9 \u{1f600}', nested: [1, null, true] }
      const fn = vi.fn(async () => value)
      const a = idem(ONLY_K1)
      expect(await a.run({ key: k, payload: { amount: 4200 } }, fn)).toEqual({ status: 'executed', value })
      expect(await a.run({ key: k, payload: { amount: 4200 } }, fn)).toEqual({ status: 'replayed', value })
      expect(fn).toHaveBeenCalledTimes(1)
      const { result } = await readResult(rig.store, a.recordId(k))
      expect(result).toMatch(/^e1:k1:[A-Za-z0-9+/]+=*$/)
      expect(result).not.toContain(SECRET)
    })

    it('round-trips an undefined value and a stored isFinal error, as its class', async () => {
      const a = idem(ONLY_K1, {
        isFinal: (error) => error instanceof CardDeclinedError,
        errorTypes: [CardDeclinedError],
      })
      const k1 = key()
      await a.run({ key: k1 }, () => undefined)
      expect(await a.run({ key: k1 }, () => 'not run')).toEqual({ status: 'replayed', value: undefined })

      const k2 = key()
      const fn = vi.fn(async () => {
        throw new CardDeclinedError(SECRET)
      })
      await expect(a.run({ key: k2 }, fn)).rejects.toBeInstanceOf(CardDeclinedError)
      const replayed = await a.run({ key: k2 }, fn).catch((error: unknown) => error)
      expect(replayed).toBeInstanceOf(CardDeclinedError)
      expect(replayed).toMatchObject({ reason: SECRET, message: `card declined: ${SECRET}` })
      expect(fn).toHaveBeenCalledTimes(1)
      expect((await readResult(rig.store, a.recordId(k2))).result).not.toContain(SECRET)
    })

    it('seals each result with a fresh IV: the same value twice never gives the same bytes', async () => {
      const a = idem(ONLY_K1)
      const [x, y] = [key(), key()]
      await a.run({ key: x, fingerprint: 'f' }, () => 'same')
      await a.run({ key: y, fingerprint: 'f' }, () => 'same')
      const rx = (await readResult(rig.store, a.recordId(x))).result
      const ry = (await readResult(rig.store, a.recordId(y))).result
      expect(rx.slice(6, 22)).not.toBe(ry.slice(6, 22))
    })

    it('runMany seals and opens each outcome', async () => {
      const a = idem(ONLY_K1)
      const keys = [key(), key(), key()]
      const first = await Promise.all(
        a.runMany(
          keys.map((k) => ({ key: k })),
          (_ctx, i) => ({ i, SECRET }),
        ),
      )
      expect(first.map((r) => r.status)).toEqual(['executed', 'executed', 'executed'])
      const again = await Promise.all(
        a.runMany(
          keys.map((k) => ({ key: k })),
          () => 'not run',
        ),
      )
      expect(again.map((r) => r.value)).toEqual([0, 1, 2].map((i) => ({ i, SECRET })))
      for (const k of keys) expect((await readResult(rig.store, a.recordId(k))).result).toMatch(/^e1:k1:/)
    })

    it('rotates: old results stay readable while their key is listed, new ones use the current key', async () => {
      const [old, fresh] = [key(), key()]
      await idem(ONLY_K1).run({ key: old }, () => ({ v: 'old' }))
      const rotated = idem(ROTATED)
      const fn = vi.fn(() => ({ v: 'new' }))
      expect(await rotated.run({ key: old }, fn)).toEqual({ status: 'replayed', value: { v: 'old' } })
      expect(fn).not.toHaveBeenCalled()
      await rotated.run({ key: fresh }, fn)
      expect((await readResult(rig.store, rotated.recordId(fresh))).result).toMatch(/^e1:k2:/)
      expect((await readResult(rig.store, rotated.recordId(old))).result).toMatch(/^e1:k1:/)
      expect(rotated.encryptionKeyId).toBe('k2')
    })

    it('refuses a result under a key no longer listed: a typed error, nothing runs, the record stays', async () => {
      const k = key()
      const writer = idem(ONLY_K1)
      await writer.run({ key: k }, () => 'under k1')
      const before = await readResult(rig.store, writer.recordId(k))
      const fn = vi.fn(() => 'ran again')
      const error = await idem(ONLY_K2)
        .run({ key: k }, fn)
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(EncryptionKeyUnknownError)
      expect(error).toMatchObject({ code: ErrorCode.ENCRYPTION_KEY_UNKNOWN, keyId: 'k1', recordId: writer.recordId(k) })
      expect(fn).not.toHaveBeenCalled()
      expect(await readResult(rig.store, writer.recordId(k))).toEqual(before)
      // Listed again, it reads.
      expect(await idem(ROTATED).run({ key: k }, fn)).toEqual({ status: 'replayed', value: 'under k1' })
    })

    it('refuses an altered ciphertext: authentication fails, nothing runs, the record stays', async () => {
      const k = key()
      const a = idem(ONLY_K1)
      await a.run({ key: k, payload: { n: 1 } }, () => ({ ok: true }))
      const { result, fingerprint } = await readResult(rig.store, a.recordId(k))
      const altered = flipCharacter(result)
      await writeResult(rig.store, a.recordId(k), fingerprint, altered)
      const fn = vi.fn(() => ({ ok: 'again' }))
      const error = await a.run({ key: k, payload: { n: 1 } }, fn).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StoredResultAuthenticationError)
      expect(error).toMatchObject({ code: ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED })
      expect(fn).not.toHaveBeenCalled()
      expect((await readResult(rig.store, a.recordId(k))).result).toBe(altered)
      // Truncated, or cut to its head: the same error.
      await writeResult(rig.store, a.recordId(k), fingerprint, result.slice(0, 20))
      expect(await codeOf(a.run({ key: k, payload: { n: 1 } }, fn))).toBe(ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED)
      await writeResult(rig.store, a.recordId(k), fingerprint, 'e1:k1:')
      expect(await codeOf(a.run({ key: k, payload: { n: 1 } }, fn))).toBe(ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED)
      expect(fn).not.toHaveBeenCalled()
    })

    it('refuses a result copied to another record, or to the same record under another request', async () => {
      const [from, to] = [key(), key()]
      const a = idem(ONLY_K1)
      await a.run({ key: from, fingerprint: 'fp-a' }, () => ({ paid: 100 }))
      const { result } = await readResult(rig.store, a.recordId(from))
      await writeResult(rig.store, a.recordId(to), 'fp-a', result)
      const fn = vi.fn()
      expect(await codeOf(a.run({ key: to, fingerprint: 'fp-a' }, fn))).toBe(
        ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED,
      )
      // Same record, same ciphertext, another fingerprint (another request body).
      await writeResult(rig.store, a.recordId(from), 'fp-b', result)
      expect(await codeOf(a.run({ key: from, fingerprint: 'fp-b' }, fn))).toBe(
        ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED,
      )
      expect(fn).not.toHaveBeenCalled()
    })

    it('reads plaintext results only with acceptPlaintext, and refuses sealed ones without keys', async () => {
      const [plain, sealed] = [key(), key()]
      await idem(undefined).run({ key: plain }, () => ({ before: 'encryption' }))
      const fn = vi.fn()
      const error = await idem(ONLY_K1)
        .run({ key: plain }, fn)
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StoredResultNotEncryptedError)
      expect(error).toMatchObject({ code: ErrorCode.STORED_RESULT_NOT_ENCRYPTED })
      expect(await idem({ ...ONLY_K1, acceptPlaintext: true }).run({ key: plain }, fn)).toEqual({
        status: 'replayed',
        value: { before: 'encryption' },
      })
      await idem(ONLY_K1).run({ key: sealed }, () => 'sealed')
      expect(await codeOf(idem(undefined).run({ key: sealed }, fn))).toBe(ErrorCode.ENCRYPTION_KEY_UNKNOWN)
      expect(fn).not.toHaveBeenCalled()
    })

    it('keeps the plaintext out of everything the store holds', async () => {
      const a = idem(ROTATED, { isFinal: () => true })
      await a.run({ key: key() }, () => ({ card: SECRET }))
      await a
        .run({ key: key() }, () => {
          throw new Error(SECRET)
        })
        .catch(() => {})
      const dump = await rig.dump()
      expect(dump).toContain('e1:k2:')
      expect(dump).not.toContain(SECRET)
      expect(dump).not.toContain(Buffer.from(SECRET).toString('base64'))
    })
  })
}
