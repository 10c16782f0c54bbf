// The outbox through the ORM adapters: every statement the outbox and the relay run goes through
// Kysely's, Knex's and Drizzle's executors (their placeholder rewriting included) on each database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { type OutboxRig, outboxRig, RecordingProducer } from '../../test/support/outbox/outbox-rigs.test-helper.js'
import { type OrmName, ormRig } from '../../test/support/sql/orm-rigs.test-helper.js'
import type { SqlDialect } from '../sql/core/executor.js'
import { OutboxRelay } from './relay.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const DIALECTS: { dialect: SqlDialect; name: string; port: number | null }[] = [
  { dialect: 'postgres', name: 'PostgreSQL', port: SERVICES.PostgreSQL.port },
  { dialect: 'mysql', name: 'MariaDB', port: SERVICES.MariaDB.port },
  { dialect: 'sqlite', name: 'SQLite', port: null },
]

for (const { dialect, name, port } of DIALECTS) {
  if (port !== null && !(await requireService(name, port))) continue
  for (const orm of ['Kysely', 'Knex', 'Drizzle'] as OrmName[]) {
    describe(`outbox through ${orm} on ${name}`, () => {
      let rig: OutboxRig
      beforeAll(async () => {
        rig = await outboxRig(ormRig(orm, dialect))
      })
      afterAll(async () => {
        await rig?.cleanup()
      })

      it('adds in its transactions, and relays, retries, fails, requeues and sweeps through it', async () => {
        await expect(
          rig.db.transaction(async (_tx, sql) => {
            await rig.outbox.add(sql, { id: 'orm-rolled-back', payload: 0 })
            throw new Error('rolled back')
          }),
        ).rejects.toThrow('rolled back')
        const ids = await rig.db.transaction((_tx, sql) =>
          rig.outbox.addMany(sql, [
            { id: 'orm-1', payload: { n: 1 }, destination: 'd', headers: { h: 'v' } },
            { id: 'orm-poison', payload: { n: 2 } },
            { id: 'orm-3', payload: 'three?' },
          ]),
        )
        let refuse = true
        const producer = new RecordingProducer({
          fail: (m) => (refuse && m.id === 'orm-poison' ? new Error('no') : undefined),
        })
        const relay = new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer, maxAttempts: 2, backoff: () => 0 })
        expect(await relay.runOnce()).toMatchObject({ claimed: 3, published: 2, retried: 1 })
        expect(await relay.runOnce()).toMatchObject({ claimed: 1, failed: 1 })
        expect(await relay.backlog()).toMatchObject({ pending: 0, failed: 1 })
        refuse = false
        expect(await rig.outbox.retryFailed(rig.db)).toBe(1)
        expect(await relay.runOnce()).toMatchObject({ claimed: 1, published: 1 })
        expect(producer.published.map((m) => m.id)).toEqual(['orm-1', 'orm-3', 'orm-poison'])
        expect(producer.published[0]).toEqual({ id: 'orm-1', payload: { n: 1 }, destination: 'd', headers: { h: 'v' } })
        expect(producer.published[1]?.payload).toBe('three?')
        await sleep(10)
        expect(await rig.outbox.sweep(rig.db, 1)).toBe(ids.length)
        expect(await rig.row('orm-1')).toBeUndefined()
      })
    })
  }
}
