// The behaviour every transaction-mode adapter must show, as one suite that runs on any rig
// (a database plus an adapter): commit together, roll back together, replay, wait, mismatch.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode } from '../../../src/errors.js'
import { codeOf } from '../core/code-of.test-helper.js'
import type { TransactionRig } from './transaction-rigs.test-helper.js'

export function describeTransactionMode(name: string, makeRig: () => Promise<TransactionRig>): void {
  describe(`idem.transaction on ${name}`, () => {
    let rig: TransactionRig
    beforeAll(async () => {
      rig = await makeRig()
    })
    afterAll(() => rig?.cleanup())

    it('commits the record and the business write together, and replays the result to a duplicate', async () => {
      const idem = rig.idem()
      const work = async (_tx: unknown, ctx: { sql: Parameters<TransactionRig['addEffect']>[0] }) => {
        await rig.addEffect(ctx.sql, 'commit-1')
        return { extendedUntil: '2027-11-21' }
      }
      const first = await idem.transaction(rig.db, { key: 'commit-1', payload: { amount: 10 } }, work)
      const second = await idem.transaction(rig.db, { key: 'commit-1', payload: { amount: 10 } }, work)
      expect(first).toEqual({ status: 'executed', value: { extendedUntil: '2027-11-21' } })
      expect(second).toEqual({ status: 'replayed', value: { extendedUntil: '2027-11-21' } })
      expect(await rig.effect('commit-1')).toBe(1)
      expect(await rig.store.get(rig.idem().recordId('commit-1'))).toMatchObject({ state: 'completed' })
    })

    it('stores the outcome of a function that returns nothing, retained from its claim, and replays it', async () => {
      const idem = rig.idem({ ttl: 60_000 })
      const work = async (_tx: unknown, ctx: { sql: Parameters<TransactionRig['addEffect']>[0] }) => {
        await rig.addEffect(ctx.sql, 'void-1')
      }
      expect(await idem.transaction(rig.db, { key: 'void-1' }, work)).toEqual({ status: 'executed', value: undefined })
      expect(await idem.transaction(rig.db, { key: 'void-1' }, work)).toEqual({ status: 'replayed', value: undefined })
      expect(await rig.effect('void-1')).toBe(1)
      const record = await rig.store.get(idem.recordId('void-1'))
      expect(record).toMatchObject({ state: 'completed', token: null, leaseUntil: null, attempt: 1 })
      // Counted from the claim (a settled outcome) or from the completion: within the transaction's time.
      expect(record?.expiresAt).toBeGreaterThanOrEqual((record?.createdAt ?? 0) + 60_000)
      expect(record?.expiresAt).toBeLessThanOrEqual((record?.updatedAt ?? 0) + 60_000)
    })

    it('answers a nested call for the same key on the same transaction IN_PROGRESS, whatever the function returns', async () => {
      const idem = rig.idem({ waitTimeout: 20 })
      for (const [key, value] of [
        ['nested-void', undefined],
        ['nested-value', { paid: true }],
      ] as const) {
        let inner: unknown
        const outer = await idem.transaction(rig.db, { key }, async (tx, ctx) => {
          await rig.addEffect(ctx.sql, key)
          inner = await codeOf(idem.transaction(rig.join(tx), { key }, () => 'the inner call ran'))
          return value
        })
        expect(outer).toEqual({ status: 'executed', value })
        expect(inner).toBe(ErrorCode.IN_PROGRESS)
        expect(await idem.transaction(rig.db, { key }, () => 'again')).toEqual({ status: 'replayed', value })
        expect(await rig.effect(key)).toBe(1)
      }
    })

    it('rolls back the business write and the claim when the function throws, and a retry executes', async () => {
      const idem = rig.idem()
      const before = await rig.records()
      await expect(
        idem.transaction(rig.db, { key: 'throws-1' }, async (_tx, ctx) => {
          await rig.addEffect(ctx.sql, 'throws-1')
          throw new Error('payment gateway said no')
        }),
      ).rejects.toThrow('payment gateway said no')
      expect(await rig.effect('throws-1')).toBe(0)
      expect(await rig.records()).toBe(before)
      const retry = await idem.transaction(rig.db, { key: 'throws-1' }, async (_tx, ctx) => {
        await rig.addEffect(ctx.sql, 'throws-1')
        return 'ok'
      })
      expect(retry).toEqual({ status: 'executed', value: 'ok' })
      expect(await rig.effect('throws-1')).toBe(1)
    })

    it('reports a key reused with a different payload as FINGERPRINT_MISMATCH without running the function', async () => {
      const idem = rig.idem()
      await idem.transaction(rig.db, { key: 'mismatch-1', payload: { amount: 10 } }, async (_tx, ctx) => {
        await rig.addEffect(ctx.sql, 'mismatch-1')
      })
      let ran = false
      const code = await codeOf(
        idem.transaction(rig.db, { key: 'mismatch-1', payload: { amount: 99 } }, () => {
          ran = true
        }),
      )
      expect(code).toBe(ErrorCode.FINGERPRINT_MISMATCH)
      expect(ran).toBe(false)
      expect(await rig.effect('mismatch-1')).toBe(1)
    })

    it('rolls everything back when the result is too large to store', async () => {
      const idem = rig.idem({ maxResultBytes: 64 })
      const code = await codeOf(
        idem.transaction(rig.db, { key: 'large-1' }, async (_tx, ctx) => {
          await rig.addEffect(ctx.sql, 'large-1')
          return 'x'.repeat(100)
        }),
      )
      expect(code).toBe(ErrorCode.RESULT_TOO_LARGE)
      expect(await rig.effect('large-1')).toBe(0)
      expect(await rig.store.get(idem.recordId('large-1'))).toBeNull()
    })

    it('stores an isFinal error without the function writes, and replays it to duplicates', async () => {
      class Declined extends Error {
        override name = 'Declined'
        readonly reason = 'insufficient_funds'
      }
      const idem = rig.idem({ isFinal: (e) => e instanceof Declined })
      let runs = 0
      const work = async (_tx: unknown, ctx: { sql: Parameters<TransactionRig['addEffect']>[0] }) => {
        runs++
        await rig.addEffect(ctx.sql, 'final-1')
        throw new Declined('card declined')
      }
      await expect(idem.transaction(rig.db, { key: 'final-1' }, work)).rejects.toThrow('card declined')
      const replayed = await idem.transaction(rig.db, { key: 'final-1' }, work).catch((e: unknown) => e)
      expect(replayed).toMatchObject({ name: 'Declined', message: 'card declined', reason: 'insufficient_funds' })
      expect(runs).toBe(1)
      expect(await rig.effect('final-1')).toBe(0)
    })

    it('makes concurrent duplicates wait for the first transaction, then replay its result', async () => {
      const idem = rig.idem()
      let runs = 0
      const racers = Array.from({ length: 8 }, (_, i) =>
        idem.transaction(rig.db, { key: 'race-1', payload: { order: 42 } }, async (_tx, ctx) => {
          runs++
          await rig.addEffect(ctx.sql, 'race-1')
          await new Promise((resolve) => setTimeout(resolve, 50))
          return { racer: i }
        }),
      )
      const results = await Promise.all(racers)
      expect(runs).toBe(1)
      expect(results.filter((r) => r.status === 'executed')).toHaveLength(1)
      const winner = results.find((r) => r.status === 'executed')?.value
      for (const r of results) expect(r.value).toEqual(winner)
      expect(await rig.effect('race-1')).toBe(1)
    })

    it('executes a racer whose predecessor rolled back', async () => {
      const idem = rig.idem()
      let release!: () => void
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      let claimed!: () => void
      const firstClaimed = new Promise<void>((resolve) => {
        claimed = resolve
      })
      const first = idem.transaction(rig.db, { key: 'rollback-race' }, async (_tx, ctx) => {
        claimed()
        await rig.addEffect(ctx.sql, 'rollback-race')
        await gate
        throw new Error('first attempt fails')
      })
      await firstClaimed
      const second = idem.transaction(rig.db, { key: 'rollback-race' }, async (_tx, ctx) => {
        await rig.addEffect(ctx.sql, 'rollback-race')
        return 'second'
      })
      await new Promise((resolve) => setTimeout(resolve, 30))
      release()
      await expect(first).rejects.toThrow('first attempt fails')
      expect(await second).toEqual({ status: 'executed', value: 'second' })
      expect(await rig.effect('rollback-race')).toBe(1)
    })

    it('answers IN_PROGRESS while a run() claim of the same key holds a live lease', async () => {
      const idem = rig.idem()
      let release!: () => void
      let claimed!: () => void
      const runClaimed = new Promise<void>((resolve) => {
        claimed = resolve
      })
      const running = idem.run({ key: 'mixed-1' }, () => {
        claimed()
        return new Promise<void>((resolve) => {
          release = resolve
        })
      })
      await runClaimed
      expect(await codeOf(idem.transaction(rig.db, { key: 'mixed-1' }, () => 'never'))).toBe(ErrorCode.IN_PROGRESS)
      release()
      await running
      expect(await idem.transaction(rig.db, { key: 'mixed-1' }, () => 'never')).toEqual({
        status: 'replayed',
        value: undefined,
      })
    })

    it('rejects a store on another dialect and a missing adapter with a TypeError', async () => {
      const idem = rig.idem()
      const other = { ...rig.db, dialect: rig.dialect === 'sqlite' ? 'postgres' : 'sqlite' } as typeof rig.db
      await expect(idem.transaction(other, { key: 'k' }, () => 1)).rejects.toThrow(TypeError)
      await expect(idem.transaction({} as typeof rig.db, { key: 'k' }, () => 1)).rejects.toThrow(TypeError)
    })
  })
}
