// The outbox on each real database: a message exists exactly when its transaction commits, the
// relay publishes it once with its id, poison rows end failed without blocking the rest, a lapsed
// lease hands rows to another relay, and the sweep keeps the table small.

import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import {
  consume,
  countById,
  DATABASES,
  type OutboxRig,
  RecordingProducer,
} from '../../test/support/outbox/outbox-rigs.test-helper.js'
import { OutboxRelay } from './relay.js'
import type { OutboxRelayOptions } from './relay-options.js'

for (const database of DATABASES) {
  if (database.port !== null && !(await requireService(database.name, database.port))) continue

  describe(`outbox on ${database.name}`, () => {
    let rig: OutboxRig
    beforeAll(async () => {
      rig = await database.make()
    })
    afterAll(async () => {
      await rig?.cleanup()
    })

    const relayOf = (producer: RecordingProducer, options: Partial<OutboxRelayOptions> = {}) =>
      new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer, retention: false, ...options })

    /** Run batches until none claims anything (rows waiting on a backoff are not claimable yet). */
    async function drain(relay: OutboxRelay): Promise<void> {
      for (let i = 0; i < 100; i++) if ((await relay.runOnce()).claimed === 0) return
      throw new Error('the outbox did not drain in 100 batches')
    }

    it('publishes nothing that was added in a transaction that rolled back', async () => {
      await expect(
        rig.db.transaction(async (_tx, sql) => {
          await rig.outbox.add(sql, { id: 'rolled-back', payload: { n: 1 } })
          throw new Error('business rule violated')
        }),
      ).rejects.toThrow('business rule violated')
      const producer = new RecordingProducer()
      await drain(relayOf(producer))
      expect(producer.attempts).toEqual([])
      expect(await rig.row('rolled-back')).toBeUndefined()
    })

    it('publishes a committed message once, with its id, payload, destination and headers', async () => {
      const id = await rig.db.transaction(async (_tx, sql) => {
        await rig.addEffect(sql, 'order-1')
        return rig.outbox.add(sql, {
          payload: { order: 1, items: ['a', 'b'], note: 'ünïcode' },
          destination: 'orders.created',
          headers: { tenant: 'acme' },
        })
      })
      expect(id).toMatch(/^[0-9a-f-]{36}$/)
      const producer = new RecordingProducer()
      const relay = relayOf(producer)
      expect(await relay.runOnce()).toMatchObject({ claimed: 1, published: 1 })
      await drain(relay)
      expect(producer.published).toEqual([
        {
          id,
          payload: { order: 1, items: ['a', 'b'], note: 'ünïcode' },
          destination: 'orders.created',
          headers: { tenant: 'acme' },
        },
      ])
      expect(await rig.row(id)).toMatchObject({ status: 'sent', attempts: 1 })
      expect(await relay.backlog()).toEqual({ pending: 0, failed: 0, oldestPendingMs: null })
    })

    it('keeps the first message when an id is added twice, and adds once per idem.transaction key', async () => {
      await rig.db.transaction(async (_tx, sql) => {
        await rig.outbox.add(sql, { id: 'twice', payload: 'first' })
        await rig.outbox.add(sql, { id: 'twice', payload: 'second' })
      })
      const idem = rig.idem({ scope: 'outbox-command' })
      const ids: string[] = []
      for (let delivery = 0; delivery < 3; delivery++) {
        const out = await idem.transaction(rig.db, { key: 'command-7' }, (_tx, ctx) =>
          rig.outbox.add(ctx.sql, { payload: { command: 7 } }),
        )
        ids.push(out.value)
      }
      expect(new Set(ids).size).toBe(1)
      const producer = new RecordingProducer()
      await drain(relayOf(producer))
      expect(producer.published.map((m) => [m.id, m.payload])).toEqual([
        ['twice', 'first'],
        [ids[0], { command: 7 }],
      ])
    })

    it('marks a poison message failed after maxAttempts with its error, while the others flow', async () => {
      await rig.db.transaction(async (_tx, sql) => {
        for (const id of ['before-poison', 'poison', 'after-poison']) await rig.outbox.add(sql, { id, payload: id })
      })
      const producer = new RecordingProducer({
        fail: (m) => (m.id === 'poison' ? new Error('broker refuses this message') : undefined),
      })
      const errors: string[] = []
      const relay = relayOf(producer, {
        maxAttempts: 3,
        backoff: () => 0,
        onError: (_e, context) => errors.push(`${context.stage}:${context.messageId}`),
      })
      await drain(relay)
      expect(countById(producer.published.map((m) => m.id))).toEqual(
        new Map([
          ['before-poison', 1],
          ['after-poison', 1],
        ]),
      )
      expect(producer.attempts.filter((id) => id === 'poison')).toHaveLength(3)
      expect(errors).toEqual(['publish:poison', 'publish:poison', 'publish:poison'])
      const row = await rig.row('poison')
      expect(row).toMatchObject({ status: 'failed', attempts: 3 })
      expect(row?.last_error).toContain('broker refuses this message')
      expect(await relay.backlog()).toMatchObject({ pending: 0, failed: 1 })
      expect(relay.stats).toMatchObject({ published: 2, retried: 2, failed: 1 })

      // Once the cause is fixed, the operator puts it back and it goes out.
      expect(await rig.outbox.retryFailed(rig.db, ['poison'])).toBe(1)
      const fixed = new RecordingProducer()
      await drain(relayOf(fixed))
      expect(fixed.published.map((m) => m.id)).toEqual(['poison'])
      expect(await rig.row('poison')).toMatchObject({ status: 'sent' })
    })

    it('hands the rows of a relay whose lease lapsed to another, which republishes them with the same ids', async () => {
      const ids = await rig.db.transaction((_tx, sql) =>
        rig.outbox.addMany(
          sql,
          ['stuck-1', 'stuck-2', 'stuck-3'].map((id) => ({ id, payload: { id } })),
        ),
      )
      let unstick = () => {}
      const stuck = new Promise<void>((resolve) => {
        unstick = resolve
      })
      let entered = () => {}
      const inPublish = new Promise<void>((resolve) => {
        entered = resolve
      })
      // Relay A's broker accepts the first message and then never confirms: A is as good as dead.
      const slow = new RecordingProducer({
        beforeConfirm: () => {
          entered()
          return stuck
        },
      })
      const a = relayOf(slow, { lease: 2000 })
      const aBatch = a.runOnce()
      await inPublish
      const fast = new RecordingProducer()
      const b = relayOf(fast, { lease: 2000 })
      // B finds nothing while A's lease holds, then takes all three once it lapses.
      let claimed = 0
      for (let i = 0; i < 100 && claimed === 0; i++) {
        claimed = (await b.runOnce()).claimed
        if (claimed === 0) await sleep(100)
      }
      expect(fast.published.map((m) => m.id)).toEqual(ids)
      unstick()
      // A's broker finally confirms stuck-1; A's lease is over, so it tries nothing more.
      expect(await aBatch).toMatchObject({ claimed: 3, published: 1 })
      expect(slow.published.map((m) => m.id)).toEqual(['stuck-1'])
      for (const id of ids) expect(await rig.row(id)).toMatchObject({ status: 'sent' })

      // The consumer sees stuck-1 twice and applies it once.
      const deliveries = [...fast.published, ...slow.published]
      expect(await consume(rig, deliveries)).toBe(1)
      for (const id of ids) expect(await rig.effect(id)).toBe(1)
    })

    it('sweeps sent rows older than the retention and keeps pending and failed ones', async () => {
      const relay = relayOf(new RecordingProducer())
      await drain(relay)
      await rig.db.transaction(async (_tx, sql) => {
        await rig.outbox.add(sql, { id: 'sweep-sent', payload: 1 })
        await rig.outbox.add(sql, { id: 'sweep-failed', payload: 2 })
      })
      const refusing = new RecordingProducer({
        fail: (m) => (m.id === 'sweep-failed' ? new Error('refused') : undefined),
      })
      await drain(relayOf(refusing, { maxAttempts: 1 }))
      await rig.db.transaction((_tx, sql) => rig.outbox.add(sql, { id: 'sweep-pending', payload: 3 }))
      const before = await relay.backlog()
      await sleep(20)
      expect(await rig.outbox.sweep(rig.db, 5, 2)).toBe(2)
      expect(await rig.outbox.sweep(rig.db, 5)).toBeGreaterThan(0)
      expect(await rig.outbox.sweep(rig.db, 5)).toBe(0)
      expect(await rig.row('sweep-sent')).toBeUndefined()
      expect(await rig.row('sweep-failed')).toMatchObject({ status: 'failed' })
      expect(await rig.row('sweep-pending')).toMatchObject({ status: 'pending' })
      expect(await relay.backlog()).toMatchObject({ pending: before.pending, failed: before.failed })
      // A sweep that finds rows younger than the retention deletes nothing.
      await drain(relay)
      expect(await rig.outbox.sweep(rig.db, '1h')).toBe(0)
      expect(await rig.row('sweep-pending')).toMatchObject({ status: 'sent' })
    })

    it('creates its schema idempotently', async () => {
      await rig.outbox.ensureSchema(rig.db)
      await rig.outbox.ensureSchema(rig.db)
      expect(await rig.row('no-such-id')).toBeUndefined()
    })
  })
}
