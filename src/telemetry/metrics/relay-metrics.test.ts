// idem/metrics on an outbox relay (SQLite): its counters read from `relay.stats` and the backlog
// gauges asked of the outbox at scrape; a failing database leaves the gauges out of the scrape.

import Database from 'better-sqlite3'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { RecordingProducer } from '../../../test/support/outbox/outbox-rigs.test-helper.js'
import { samplesOf } from '../../../test/support/telemetry/metrics.test-helper.js'
import { Outbox } from '../../outbox/outbox.js'
import { OutboxRelay } from '../../outbox/relay.js'
import { fromBetterSqlite3 } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import type { SqlDatabase } from '../../sql/core/executor.js'
import { idemMetrics } from './index.js'

const opened: Database.Database[] = []
afterEach(() => {
  for (const connection of opened.splice(0)) connection.close()
})

async function setup() {
  const connection = new Database(':memory:')
  opened.push(connection)
  const db = fromBetterSqlite3(connection)
  const outbox = new Outbox()
  await outbox.ensureSchema(db)
  // m4 and m5 never get through: retried once, then failed (maxAttempts 2).
  const producer = new RecordingProducer({
    fail: (message) => (message.id === 'm4' || message.id === 'm5' ? new Error('broker says no') : undefined),
  })
  const relay = new OutboxRelay({
    outbox,
    db,
    producer,
    maxAttempts: 2,
    backoff: () => 0,
    retention: false,
    onError: () => {},
  })
  const registry = new Registry()
  const metrics = idemMetrics({ registry })
  const add = (ids: string[]) =>
    db.transaction(async (_tx, sql) => {
      for (const id of ids) await outbox.add(sql, { id, payload: { id } })
    })
  return { connection, db, outbox, relay, registry, metrics, add }
}

const value = async (registry: Registry, name: string) => (await samplesOf(registry, name)).map((s) => s.value)

describe('outbox relay metrics', () => {
  it('read the backlog at scrape: pending rows, failed rows and the age of the oldest pending row', async () => {
    const { relay, registry, metrics, add, connection } = await setup()
    metrics.watch(relay, { name: 'orders' })
    await add(['m1', 'm2', 'm3', 'm4', 'm5'])
    // The oldest row was added an hour ago.
    connection.prepare(`UPDATE idem_outbox SET created_at = created_at - 3600000 WHERE id = 'm1'`).run()

    const before = await relay.backlog()
    const samples = await samplesOf(registry, 'idem_outbox_oldest_pending_seconds')
    const after = await relay.backlog()
    expect(await samplesOf(registry, 'idem_outbox_pending')).toEqual([{ labels: { relay: 'orders' }, value: 5 }])
    expect(await samplesOf(registry, 'idem_outbox_failed_rows')).toEqual([{ labels: { relay: 'orders' }, value: 0 }])
    expect(samples).toHaveLength(1)
    const age = samples[0]?.value as number
    expect(age).toBeGreaterThanOrEqual((before.oldestPendingMs as number) / 1000)
    expect(age).toBeLessThanOrEqual((after.oldestPendingMs as number) / 1000)
    expect(age).toBeGreaterThanOrEqual(3600)
    for (const name of ['published', 'retried', 'failed', 'errors']) {
      expect(await samplesOf(registry, `idem_outbox_${name}_total`)).toEqual([
        { labels: { relay: 'orders' }, value: 0 },
      ])
    }
  })

  it('count what the relay published, retried and failed, and report no age once nothing is pending', async () => {
    const { relay, registry, metrics, add } = await setup()
    metrics.watch(relay, { name: 'orders' })
    await add(['m1', 'm2', 'm3', 'm4', 'm5'])
    expect(await relay.runOnce()).toMatchObject({ claimed: 5, published: 3, retried: 2, failed: 0 })
    expect(await value(registry, 'idem_outbox_published_total')).toEqual([3])
    expect(await value(registry, 'idem_outbox_retried_total')).toEqual([2])
    expect(await value(registry, 'idem_outbox_pending')).toEqual([2])
    expect(await relay.runOnce()).toMatchObject({ claimed: 2, published: 0, retried: 0, failed: 2 })

    expect(await value(registry, 'idem_outbox_published_total')).toEqual([3])
    expect(await value(registry, 'idem_outbox_retried_total')).toEqual([2])
    expect(await value(registry, 'idem_outbox_failed_total')).toEqual([2])
    expect(await value(registry, 'idem_outbox_errors_total')).toEqual([0])
    expect(await value(registry, 'idem_outbox_pending')).toEqual([0])
    expect(await value(registry, 'idem_outbox_failed_rows')).toEqual([2])
    expect(await value(registry, 'idem_outbox_oldest_pending_seconds')).toEqual([0])
  })

  it('counts from when the relay is watched, and keeps the counts once the watch stops', async () => {
    const { relay, registry, metrics, add } = await setup()
    await add(['m1'])
    await relay.runOnce() // before the watch: not counted
    const stop = metrics.watch(relay, { name: 'orders' })
    await add(['m2', 'm3'])
    await relay.runOnce()
    stop()
    await add(['m6'])
    await relay.runOnce() // after the watch: not counted
    expect(await value(registry, 'idem_outbox_published_total')).toEqual([2])
    expect(await samplesOf(registry, 'idem_outbox_pending')).toEqual([])
    metrics.watch(relay, { name: 'orders' })
    await add(['m7'])
    await relay.runOnce()
    expect(await value(registry, 'idem_outbox_published_total')).toEqual([3])
  })

  it('leaves the backlog gauges out of a scrape when the database fails, and the scrape succeeds', async () => {
    const { relay, registry, metrics, outbox } = await setup()
    const down: SqlDatabase<unknown> = {
      dialect: 'sqlite',
      transaction: () => Promise.reject(new Error('SQLITE_CANTOPEN')),
    }
    const broken = new OutboxRelay({ outbox, db: down, producer: new RecordingProducer(), retention: false })
    metrics.watch(relay, { name: 'fine' })
    metrics.watch(broken, { name: 'broken' })
    expect(await samplesOf(registry, 'idem_outbox_pending')).toEqual([{ labels: { relay: 'fine' }, value: 0 }])
    const text = await registry.metrics()
    expect(text).toContain('idem_outbox_published_total{relay="broken"} 0\n')
    expect(text).not.toContain('idem_outbox_pending{relay="broken"}')
  })
})
