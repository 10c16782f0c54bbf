import { describe, expect, it, vi } from 'vitest'
import {
  describeEncryption,
  K1,
  K2,
  ONLY_K1,
  ONLY_K2,
  ROTATED,
  SECRET,
} from '../../test/support/core/encryption-suite.test-helper.js'
import { readResult } from '../../test/support/core/stored-result.test-helper.js'
import { sqliteRig } from '../../test/support/transaction/transaction-rigs.test-helper.js'
import type { IdempotencyStore } from '../contract/types.js'
import { EncryptionConfigError, ErrorCode, ResultTooLargeError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { generateEncryptionKey, plaintextBudget, ResultCipher, sealedBytes } from './encryption.js'
import { Idempotency } from './idempotency.js'

/** A MemoryStore whose "dump" is every result it was asked to keep: all it ever holds of them. */
function memoryRig() {
  const store = new MemoryStore()
  const kept: string[] = []
  const complete = store.complete.bind(store)
  const completeMany = store.completeMany.bind(store)
  store.complete = (id, token, result, ttlMs) => {
    kept.push(id, result)
    return complete(id, token, result, ttlMs)
  }
  store.completeMany = (items, ttlMs) => {
    for (const item of items) kept.push(item.id, item.result)
    return completeMany(items, ttlMs)
  }
  return { store: store as IdempotencyStore, dump: async () => kept.join('\n'), cleanup: () => store.close() }
}

describeEncryption('MemoryStore', async () => memoryRig())

describeEncryption('SqliteStore', async () => {
  const rig = await sqliteRig()
  const { store } = rig as unknown as { store: import('../stores/sqlite/sqlite-store.js').SqliteStore }
  return {
    store: rig.store,
    dump: async () => JSON.stringify(store.db.prepare(`SELECT * FROM ${store.table}`).all()),
    cleanup: () => rig.cleanup(),
  }
})

describe('the encryption option', () => {
  const store = new MemoryStore()
  const make = (encryption: unknown) =>
    new Idempotency({ store, encryption: encryption as ConstructorParameters<typeof Idempotency>[0]['encryption'] })

  it.each([
    ['not an object', 'k1'],
    ['no keys', { current: 'k1' }],
    ['current not listed', { keys: { k1: K1 }, current: 'k2' }],
    ['no current', { keys: { k1: K1 } }],
    ['a 16-byte key', { keys: { k1: K1.subarray(0, 16) }, current: 'k1' }],
    ['a 33-byte key', { keys: { k1: Buffer.concat([K1, Buffer.from([1])]) }, current: 'k1' }],
    ['a hex key', { keys: { k1: K1.toString('hex') }, current: 'k1' }],
    ['a passphrase', { keys: { k1: 'correct horse battery staple' }, current: 'k1' }],
    ['a number', { keys: { k1: 42 }, current: 'k1' }],
    ['a key id with a colon', { keys: { 'k:1': K1 }, current: 'k:1' }],
    ['a key id with a space', { keys: { 'k 1': K1 }, current: 'k 1' }],
    ['a key id over 32 characters', { keys: { ['k'.repeat(33)]: K1 }, current: 'k'.repeat(33) }],
    ['an empty key id', { keys: { '': K1 }, current: '' }],
    ['a non-ASCII key id', { keys: { 'cl\u00e9': K1 }, current: 'cl\u00e9' }],
    ['acceptPlaintext not a boolean', { keys: { k1: K1 }, current: 'k1', acceptPlaintext: 'yes' }],
  ])('refuses %s at construction with ENCRYPTION_CONFIG_INVALID', (_, encryption) => {
    const error = (() => {
      try {
        make(encryption)
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(EncryptionConfigError)
    expect(error).toMatchObject({ code: ErrorCode.ENCRYPTION_CONFIG_INVALID })
  })

  it('takes Buffers, standard and URL-safe base64, and generateEncryptionKey()', () => {
    const generated = generateEncryptionKey()
    expect(Buffer.from(generated, 'base64')).toHaveLength(32)
    const idem = make({
      keys: { a: K1, b: K2, 'c.2026-12_x': generated, d: K1.toString('base64url') },
      current: 'c.2026-12_x',
    })
    expect(idem.encryptionKeyId).toBe('c.2026-12_x')
    expect(make(undefined).encryptionKeyId).toBeUndefined()
  })

  it('never shows a key in an error message', () => {
    const short = K1.subarray(0, 20).toString('base64')
    expect(() => make({ keys: { k1: short }, current: 'k1' })).toThrow(EncryptionConfigError)
    try {
      make({ keys: { k1: short }, current: 'k1' })
    } catch (error) {
      expect((error as Error).message).not.toContain(short)
    }
  })

  it('applies maxResultBytes to the sealed form, and completes an oversize result with the error', async () => {
    const big = 'x'.repeat(1000)
    const json = JSON.stringify({ v: big })
    const sealed = sealedBytes(Buffer.byteLength(json), 2)
    // Fits as plain JSON, not once sealed.
    const idem = new Idempotency({ store, maxResultBytes: sealed - 1, encryption: ONLY_K1 })
    const fn = vi.fn(() => big)
    const error = await idem.run({ key: 'big' }, fn).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ResultTooLargeError)
    expect(error).toMatchObject({ bytes: sealed, limit: sealed - 1, value: big })
    expect(await idem.run({ key: 'big' }, fn).catch((e: unknown) => (e as { code: string }).code)).toBe(
      ErrorCode.RESULT_TOO_LARGE,
    )
    expect(fn).toHaveBeenCalledTimes(1)
    const { result } = await readResult(store, idem.recordId('big'))
    expect(result.length).toBeLessThanOrEqual(sealed - 1)
    // At exactly the sealed size, it is stored.
    const fits = new Idempotency({ store, maxResultBytes: sealed, encryption: ONLY_K1 })
    expect((await fits.run({ key: 'fits' }, () => big)).status).toBe('executed')
    expect((await readResult(store, fits.recordId('fits'))).result).toHaveLength(sealed)
  })

  it('sizes the stored form exactly, and plaintextBudget inverts it', () => {
    const cipher = new ResultCipher(ROTATED)
    for (const text of ['', 'a', 'ab', 'abc', 'caf\u00e9', 'x'.repeat(1000)]) {
      const json = JSON.stringify({ v: text })
      const sealed = cipher.seal(json, Number.MAX_SAFE_INTEGER, 'id', 'fp')
      expect(sealed.length).toBe(cipher.sealedBytes(Buffer.byteLength(json)))
      expect(cipher.open(sealed, 'id', 'fp')).toBe(json)
    }
    for (let limit = 60; limit < 400; limit++) {
      const budget = plaintextBudget(limit, 2)
      expect(sealedBytes(budget, 2)).toBeLessThanOrEqual(limit)
      expect(sealedBytes(budget + 1, 2)).toBeGreaterThan(limit)
    }
  })

  it('replays from the local cache after opening, and refuses a cached result for another request', async () => {
    const own = new MemoryStore()
    const idem = new Idempotency({ store: own, encryption: ONLY_K1, cache: { maxEntries: 10 } })
    await idem.run({ key: 'c', payload: 1 }, () => ({ SECRET }))
    const begin = vi.spyOn(own, 'begin')
    expect(await idem.run({ key: 'c', payload: 1 }, () => 'not run')).toEqual({
      status: 'replayed',
      value: { SECRET },
    })
    expect(begin).not.toHaveBeenCalled()
  })

  it('seals in transaction mode: the result the SQL writes is the sealed one', async () => {
    const rig = await sqliteRig()
    try {
      const idem = rig.idem({ encryption: ROTATED })
      const fn = vi.fn(async () => ({ card: SECRET }))
      expect(await idem.transaction(rig.db, { key: 'tx-1' }, fn)).toEqual({
        status: 'executed',
        value: { card: SECRET },
      })
      expect(await rig.idem({ encryption: ROTATED }).transaction(rig.db, { key: 'tx-1' }, fn)).toEqual({
        status: 'replayed',
        value: { card: SECRET },
      })
      // A final error is sealed too, in its own transaction.
      const final = rig.idem({ encryption: ROTATED, isFinal: () => true })
      await final
        .transaction(rig.db, { key: 'tx-2' }, () => {
          throw new Error(SECRET)
        })
        .catch(() => {})
      await expect(final.transaction(rig.db, { key: 'tx-2' }, fn)).rejects.toThrow(SECRET)
      expect(fn).toHaveBeenCalledTimes(1)
      const { store } = rig as unknown as { store: import('../stores/sqlite/sqlite-store.js').SqliteStore }
      const rows = JSON.stringify(store.db.prepare(`SELECT * FROM ${store.table}`).all())
      expect(rows).toContain('e1:k2:')
      expect(rows).not.toContain(SECRET)
      // Under a key no longer listed: refused, the function does not run.
      expect(
        await rig
          .idem({ encryption: { keys: { k3: generateEncryptionKey() }, current: 'k3' } })
          .transaction(rig.db, { key: 'tx-1' }, fn)
          .catch((e: unknown) => (e as { code: string }).code),
      ).toBe(ErrorCode.ENCRYPTION_KEY_UNKNOWN)
      expect(fn).toHaveBeenCalledTimes(1)
    } finally {
      await rig.cleanup()
    }
  })

  it('keeps records written under k1 readable by k1 alone after a rotation wrote others under k2', async () => {
    const own = new MemoryStore()
    await new Idempotency({ store: own, encryption: ONLY_K1 }).run({ key: 'a' }, () => 'a')
    await new Idempotency({ store: own, encryption: ROTATED }).run({ key: 'b' }, () => 'b')
    const k2Only = new Idempotency({ store: own, encryption: ONLY_K2 })
    expect((await k2Only.run({ key: 'b' }, () => 'x')).value).toBe('b')
    expect(await k2Only.run({ key: 'a' }, () => 'x').catch((e: unknown) => (e as { code: string }).code)).toBe(
      ErrorCode.ENCRYPTION_KEY_UNKNOWN,
    )
  })
})
