// The state-machine guard: its checks without a database, then every outcome, racing duplicates
// and transaction rollback on SQLite, PostgreSQL and MariaDB (with and without FOUND_ROWS).

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { type GuardRig, mysqlRig, onEachDatabase } from '../../test/support/guards/guard-rigs.test-helper.js'
import { counting, raceOnRow, recordingExecutor, run } from '../../test/support/guards/guard-sql.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import type { TransactionContext } from '../core/transaction.js'
import { ErrorCode, IdempotencyError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { defineStateMachine, StateTransitionError } from './state-machine.js'

const transitions = { pending: ['paid', 'cancelled'], paid: ['completed', 'refunded'] } as const

describe('defineStateMachine', () => {
  it('rejects with a StateTransitionError that is an IdempotencyError (STATE_TRANSITION_REJECTED)', () => {
    const error = new StateTransitionError('orders', 7, 'pending', 'paid', { outcome: 'not_allowed', current: 'paid' })
    expect(error).toBeInstanceOf(IdempotencyError)
    expect(error).toMatchObject({
      name: 'StateTransitionError',
      code: ErrorCode.STATE_TRANSITION_REJECTED,
      outcome: 'not_allowed',
      current: 'paid',
      table: 'orders',
      id: 7,
      message: 'orders 7 is paid, so pending → paid does not apply',
    })
  })

  it('replays a final StateTransitionError with its code, and as its class when listed in errorTypes', async () => {
    const refuse = async () => {
      throw new StateTransitionError('orders', 1, 'pending', 'paid', { outcome: 'not_found' })
    }
    const isFinal = (error: unknown) => error instanceof StateTransitionError
    for (const errorTypes of [undefined, [StateTransitionError]]) {
      const idem = new Idempotency({ store: new MemoryStore(), isFinal, ...(errorTypes ? { errorTypes } : {}) })
      await idem.run({ key: 'pay-1' }, refuse).catch(() => {})
      const replayed = await idem.run({ key: 'pay-1' }, refuse).catch((e: unknown) => e)
      expect(replayed).toMatchObject({
        code: ErrorCode.STATE_TRANSITION_REJECTED,
        outcome: 'not_found',
        table: 'orders',
      })
      expect(replayed instanceof StateTransitionError).toBe(errorTypes !== undefined)
    }
  })

  it('refuses table and column names that are not plain identifiers', () => {
    const ok = { table: 'orders', column: 'status', transitions }
    for (const table of ['orders; DROP TABLE x', 'a.b.c', '', '.orders', 'or"ders', '1orders', 'x'.repeat(64)]) {
      expect(() => defineStateMachine({ ...ok, table }), table).toThrow(TypeError)
    }
    for (const column of ['status ', 'st`atus', 'status--', '']) {
      expect(() => defineStateMachine({ ...ok, column }), column).toThrow(TypeError)
      expect(() => defineStateMachine({ ...ok, id: column }), column).toThrow(TypeError)
    }
    expect(() => defineStateMachine({ ...ok, id: 'status' })).toThrow(/different columns/)
    expect(defineStateMachine({ ...ok, table: 'shop.orders' }).table).toBe('shop.orders')
  })

  it('refuses a transition map without transitions or with a state moving to itself', () => {
    expect(() => defineStateMachine({ table: 'orders', column: 'status', transitions: {} })).toThrow(/at least one/)
    expect(() =>
      defineStateMachine({ table: 'orders', column: 'status', transitions: { pending: ['pending'] } }),
    ).toThrow(/cannot list pending itself/)
  })

  it('throws on an undeclared transition before sending any statement', async () => {
    const orders = defineStateMachine({ table: 'orders', column: 'status', transitions })
    const sql = recordingExecutor('postgres')
    // @ts-expect-error pending → refunded is not declared, and the types say so too
    await expect(orders.transition(sql, 1, 'pending', 'refunded')).rejects.toThrow(
      /"pending" → "refunded" is not a declared transition \(pending may go to: paid, cancelled\)/,
    )
    // @ts-expect-error 'completed' declares no transitions
    await expect(orders.transition(sql, 1, 'completed', 'paid')).rejects.toThrow(/"completed" has none/)
    expect(sql.calls).toEqual([])
    expect(orders.can('pending', 'paid')).toBe(true)
    expect(orders.can('paid', 'pending')).toBe(false)
    expect(orders.can('toString', 'paid')).toBe(false)
  })

  it('keeps the transitions it was given, whatever happens to the caller’s object later', async () => {
    const map: Record<string, string[]> = { pending: ['paid'] }
    const orders = defineStateMachine({ table: 'orders', column: 'status', transitions: map })
    map.pending?.push('refunded')
    expect(orders.can('pending', 'refunded')).toBe(false)
    expect(Object.isFrozen(orders.transitions.pending)).toBe(true)
  })

  it('refuses extra columns that are not identifiers or that the guard manages, before any statement', async () => {
    const orders = defineStateMachine({ table: 'orders', column: 'status', transitions })
    const sql = recordingExecutor('mysql')
    for (const set of [{ 'paid_at = now(), x': 1 }, { status: 'x' }, { ID: 'x' }, { paid_at: undefined }]) {
      await expect(orders.transition(sql, 1, 'pending', 'paid', { set }), JSON.stringify(set)).rejects.toThrow(
        TypeError,
      )
    }
    expect(sql.calls).toEqual([])
  })

  it('quotes names for the dialect and sends every value as a parameter', async () => {
    const orders = defineStateMachine({ table: 'shop.order', id: 'order_id', column: 'state', transitions })
    const pg = recordingExecutor('postgres')
    await orders.transition(pg, "o'1", 'pending', 'paid', { set: { paid_at: "'); DROP" } })
    expect(pg.calls).toEqual([
      {
        sql: 'UPDATE "shop"."order" SET "state" = $1, "paid_at" = $2 WHERE "order_id" = $3 AND "state" = $4',
        params: ['paid', "'); DROP", "o'1", 'pending'],
      },
    ])
    const my = recordingExecutor('mysql')
    await orders.transition(my, 7, 'paid', 'completed')
    expect(my.calls).toEqual([
      {
        sql: 'UPDATE `shop`.`order` SET `state` = ? WHERE `order_id` = ? AND `state` = ?',
        params: ['completed', 7, 'paid'],
      },
    ])
  })
})

function describeStateMachine(name: string, makeRig: () => Promise<GuardRig>): void {
  describe(`state-machine guard on ${name}`, () => {
    let rig: GuardRig
    let orders: ReturnType<typeof defineOrders>
    const defineOrders = (table: string) => defineStateMachine({ table, id: 'id', column: 'status', transitions })
    const insert = (id: string, status: string) =>
      run(rig, 'orders', 'INSERT INTO {t} (id, status) VALUES (?, ?)', [id, status])
    const row = async (id: string) => (await run(rig, 'orders', 'SELECT * FROM {t} WHERE id = ?', [id])).rows[0]

    beforeAll(async () => {
      rig = await makeRig()
      await rig.createTable(
        'orders',
        'id varchar(64) PRIMARY KEY, status varchar(32) NOT NULL, paid_at varchar(64) NULL, paid_by integer NULL',
      )
      orders = defineOrders(rig.table('orders'))
    })
    afterAll(() => rig?.cleanup())

    it('applies an allowed transition in one statement, with the extra columns', async () => {
      await insert('apply-1', 'pending')
      const sql = counting(rig.sql)
      const out = await orders.transition(sql, 'apply-1', 'pending', 'paid', { set: { paid_at: 't1', paid_by: 3 } })
      expect(out).toEqual({ outcome: 'applied' })
      expect(sql.statements).toBe(1)
      expect(await row('apply-1')).toMatchObject({ status: 'paid', paid_at: 't1', paid_by: 3 })
    })

    it('reports a repeated transition as already_applied and leaves the row as the first one left it', async () => {
      await insert('dup-1', 'pending')
      await orders.transition(rig.sql, 'dup-1', 'pending', 'paid', { set: { paid_at: 'first' } })
      const again = await orders.transition(rig.sql, 'dup-1', 'pending', 'paid', { set: { paid_at: 'second' } })
      expect(again).toEqual({ outcome: 'already_applied' })
      expect(await row('dup-1')).toMatchObject({ status: 'paid', paid_at: 'first' })
    })

    it('reports a transition from a state the row is not in as not_allowed, with its current state', async () => {
      await insert('moved-1', 'pending')
      await orders.transition(rig.sql, 'moved-1', 'pending', 'cancelled')
      const out = await orders.transition(rig.sql, 'moved-1', 'pending', 'paid', { set: { paid_at: 'never' } })
      expect(out).toEqual({ outcome: 'not_allowed', current: 'cancelled' })
      expect(await row('moved-1')).toMatchObject({ status: 'cancelled', paid_at: null })
      // A late duplicate after the flow moved on is not_allowed too: `current` tells the caller where it went.
      await insert('later-1', 'paid')
      await orders.transition(rig.sql, 'later-1', 'paid', 'completed')
      expect(await orders.transition(rig.sql, 'later-1', 'pending', 'paid')).toEqual({
        outcome: 'not_allowed',
        current: 'completed',
      })
    })

    it('reports a missing row as not_found and writes nothing', async () => {
      expect(await orders.transition(rig.sql, 'absent-1', 'pending', 'paid')).toEqual({ outcome: 'not_found' })
      expect(await row('absent-1')).toBeUndefined()
    })

    it('throws a StateTransitionError from transitionOrThrow for not_allowed and not_found only', async () => {
      await insert('throw-1', 'cancelled')
      const refused = await orders.transitionOrThrow(rig.sql, 'throw-1', 'pending', 'paid').catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(StateTransitionError)
      expect(refused).toMatchObject({ outcome: 'not_allowed', current: 'cancelled', from: 'pending', to: 'paid' })
      const missing = await orders.transitionOrThrow(rig.sql, 'throw-0', 'pending', 'paid').catch((e: unknown) => e)
      expect(missing).toMatchObject({ name: 'StateTransitionError', outcome: 'not_found', id: 'throw-0' })
      await insert('throw-2', 'pending')
      expect(await orders.transitionOrThrow(rig.sql, 'throw-2', 'pending', 'paid')).toEqual({ outcome: 'applied' })
      expect(await orders.transitionOrThrow(rig.sql, 'throw-2', 'pending', 'paid')).toEqual({
        outcome: 'already_applied',
      })
    })

    it('lets exactly one of 10 concurrent pending → paid transitions apply; the rest are already_applied', async () => {
      await insert('race-1', 'pending')
      // Each racer's snapshot is fixed at `pending` before any of them updates.
      const outcomes = await raceOnRow(rig, 'orders', 'status', 'race-1', 10, (sql, i) =>
        orders.transition(sql, 'race-1', 'pending', 'paid', { set: { paid_by: i } }),
      )
      const winners = outcomes.flatMap((out, i) => (out.outcome === 'applied' ? [i] : []))
      expect(winners).toHaveLength(1)
      expect(outcomes.filter((out) => out.outcome === 'already_applied')).toHaveLength(9)
      expect(await row('race-1')).toMatchObject({ status: 'paid', paid_by: winners[0] })
    })

    it('rolls back with the idem.transaction it runs in, and applies once when the message is retried', async () => {
      const idem = await rig.idem()
      await insert('tx-1', 'pending')
      const pay = async (_tx: unknown, ctx: TransactionContext, fail: boolean) => {
        const out = await orders.transition(ctx.sql, 'tx-1', 'pending', 'paid', { set: { paid_at: 'tx' } })
        if (fail) throw new Error('ledger write failed')
        return out.outcome
      }
      await expect(idem.transaction(rig.db, { key: 'pay:tx-1' }, (tx, ctx) => pay(tx, ctx, true))).rejects.toThrow(
        'ledger write failed',
      )
      expect(await row('tx-1')).toMatchObject({ status: 'pending', paid_at: null })
      const first = await idem.transaction(rig.db, { key: 'pay:tx-1' }, (tx, ctx) => pay(tx, ctx, false))
      const again = await idem.transaction(rig.db, { key: 'pay:tx-1' }, (tx, ctx) => pay(tx, ctx, false))
      expect([first, again]).toEqual([
        { status: 'executed', value: 'applied' },
        { status: 'replayed', value: 'applied' },
      ])
      expect(await row('tx-1')).toMatchObject({ status: 'paid', paid_at: 'tx' })
    })
  })
}

await onEachDatabase(describeStateMachine)
// Without FOUND_ROWS, affected rows count changed rows, not matched ones: the guard must not depend on which.
if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describe('mysql2 affected rows', () => {
    it('count matched rows by default and changed rows without FOUND_ROWS', async () => {
      const counts: number[] = []
      for (const rig of [await mysqlRig(), await mysqlRig({ flags: ['-FOUND_ROWS'] })]) {
        try {
          await rig.createTable('noop', 'id integer PRIMARY KEY, status varchar(32) NOT NULL')
          await run(rig, 'noop', "INSERT INTO {t} (id, status) VALUES (1, 'paid')")
          counts.push((await run(rig, 'noop', 'UPDATE {t} SET status = status WHERE id = 1')).affectedRows)
        } finally {
          await rig.cleanup()
        }
      }
      expect(counts).toEqual([1, 0])
    })
  })
}
