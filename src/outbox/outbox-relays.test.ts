// Several relays on one outbox: SKIP LOCKED lets a claim pass rows another transaction holds, the
// lease keeps concurrent relays on different rows (every message published once, never by two
// relays at a time), and stop() finishes the batch in hand before it resolves.

import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import {
  countById,
  DATABASES,
  type OutboxRig,
  RecordingProducer,
} from '../../test/support/outbox/outbox-rigs.test-helper.js'
import type { OutgoingMessage } from '../producer/types.js'
import { outboxNames } from './outbox-schema.js'
import { OutboxRelay } from './relay.js'

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire = () => {}
  const promise = new Promise<void>((resolve) => {
    fire = resolve
  })
  return { promise, fire }
}

for (const database of DATABASES) {
  if (database.port !== null && !(await requireService(database.name, database.port))) continue

  describe(`outbox relays on ${database.name}`, () => {
    let rig: OutboxRig
    beforeAll(async () => {
      rig = await database.make()
    })
    afterAll(async () => {
      await rig?.cleanup()
    })

    const addMessages = (prefix: string, count: number) =>
      rig.db.transaction((_tx, sql) =>
        rig.outbox.addMany(
          sql,
          Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${String(i).padStart(4, '0')}`, payload: { i } })),
        ),
      )

    it('stop() resolves once the batch in hand is published and marked, and claims no further batch', async () => {
      await addMessages('stop', 15)
      const entered = signal()
      const release = signal()
      const producer = new RecordingProducer({
        beforeConfirm: async () => {
          entered.fire()
          await release.promise
        },
      })
      const relay = new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer, batchSize: 10, pollInterval: 10 })
      relay.start()
      await entered.promise
      let stopped = false
      const stopping = relay.stop().then(() => {
        stopped = true
      })
      await sleep(100)
      expect(stopped).toBe(false)
      release.fire()
      await stopping
      expect(relay.running).toBe(false)
      expect(producer.published).toHaveLength(10)
      expect(await relay.backlog()).toMatchObject({ pending: 5 })
      // What is left goes out with the next relay.
      const next = new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer: new RecordingProducer() })
      expect(await next.runOnce()).toMatchObject({ claimed: 5, published: 5 })
    })

    it('hands back the rows it has not tried when its lease is nearly over, uncounted', async () => {
      const ids = await addMessages('late', 4)
      // The first publish takes the whole lease: trying the others could duplicate another relay's work.
      const producer = new RecordingProducer({
        beforeConfirm: async (m) => void (await sleep(m.id === ids[0] ? 1000 : 0)),
      })
      const relay = new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer, lease: 1000 })
      expect(await relay.runOnce()).toMatchObject({ claimed: 4, published: 1, released: 3 })
      for (const id of ids.slice(1)) expect(await rig.row(id)).toMatchObject({ status: 'pending', attempts: 0 })
      expect(await relay.runOnce()).toMatchObject({ claimed: 3, published: 3 })
      expect(producer.published.map((m) => m.id)).toEqual(ids)
    })

    it('fails a row after maxAttempts claims that never came back (relays dying on it)', async () => {
      const [id] = await addMessages('deadly', 1)
      // Each of these relays' broker never confirms: as far as the outbox can tell, the relay died.
      const hung = () => new RecordingProducer({ beforeConfirm: () => new Promise<void>(() => {}) })
      const dying = () =>
        new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer: hung(), lease: 300, maxAttempts: 2 })
      const survivor = new OutboxRelay({
        outbox: rig.outbox,
        db: rig.db,
        producer: new RecordingProducer(),
        maxAttempts: 2,
      })
      const claims = async () => (await rig.row(id as string))?.attempts ?? 0
      // Two relays die holding it, the second after the first one's lease lapsed. A relay started
      // while a lease holds finds nothing and returns; one started after it claims the row and hangs.
      for (let died = 1; died <= 2; died++) {
        for (let i = 0; i < 100 && (await claims()) < died; i++) {
          dying()
            .runOnce()
            .catch(() => {})
          await sleep(100)
        }
      }
      expect(await claims()).toBe(2)
      // The next relay to find it, once the second lease lapsed, finds its attempts spent.
      let outcome = await survivor.runOnce()
      for (let i = 0; i < 100 && outcome.failed === 0; i++) {
        await sleep(100)
        outcome = await survivor.runOnce()
      }
      expect(outcome).toMatchObject({ claimed: 0, failed: 1 })
      const row = await rig.row(id as string)
      expect(row).toMatchObject({ status: 'failed', attempts: 2 })
      expect(row?.last_error).toContain('claimed 2 times without an outcome')
    })

    if (database.name === 'SQLite') return

    it('claims past rows another transaction holds locked (SKIP LOCKED) instead of waiting', async () => {
      const ids = await addMessages('locked', 6)
      const table = outboxNames(rig.dialect, rig.outbox.table).table
      const held = signal()
      const done = signal()
      // Another transaction (a relay mid-claim) holds the first two pending rows.
      const holder = rig.db.transaction(async (_tx, sql) => {
        await sql.execute(`SELECT seq FROM ${table} WHERE status = 'pending' ORDER BY seq LIMIT 2 FOR UPDATE`, [])
        held.fire()
        await done.promise
      })
      await held.promise
      const producer = new RecordingProducer()
      const relay = new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer })
      const timeout = sleep(15_000).then(() => 'blocked' as const)
      try {
        expect(await Promise.race([relay.runOnce(), timeout])).toMatchObject({ claimed: 4, published: 4 })
      } finally {
        done.fire()
        await holder
      }
      expect(producer.published.map((m) => m.id)).toEqual(ids.slice(2))
      expect(await relay.runOnce()).toMatchObject({ claimed: 2, published: 2 })
      expect(producer.published.map((m) => m.id).sort()).toEqual(ids)
    })

    it('runs four relays at once: every message published once, never by two relays at a time', async () => {
      const RELAYS = 4
      const ids = await addMessages('many', 120)
      const everyoneIn = signal()
      const started = new Set<number>()
      const inFlight = new Map<string, number>()
      const overlaps: string[] = []
      const published: { relay: number; message: OutgoingMessage }[] = []
      const relays = Array.from({ length: RELAYS }, (_, n) => {
        const producer = new RecordingProducer({
          async beforeConfirm(message) {
            const other = inFlight.get(message.id)
            if (other !== undefined) overlaps.push(`${message.id} by ${other} and ${n}`)
            inFlight.set(message.id, n)
            if (!started.has(n)) {
              // Each relay's first publish waits until every relay holds a batch: the claims had
              // to avoid each other's rows while all of them were outstanding.
              started.add(n)
              if (started.size === RELAYS) everyoneIn.fire()
              await Promise.race([everyoneIn.promise, sleep(15_000)])
            }
            await sleep(1)
            inFlight.delete(message.id)
            published.push({ relay: n, message })
          },
        })
        return new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer, batchSize: 10, pollInterval: 20 })
      })
      for (const relay of relays) relay.start()
      for (let i = 0; i < 600; i++) {
        if ((await rig.outbox.backlog(rig.db)).pending === 0) break
        await sleep(50)
      }
      await Promise.all(relays.map((relay) => relay.stop()))
      expect(overlaps).toEqual([])
      // Claims skip locked rows instead of waiting on them, so no claim deadlocks with a mark.
      expect(relays.map((relay) => relay.stats.errors)).toEqual([0, 0, 0, 0])
      expect(started.size).toBe(RELAYS)
      const counts = countById(published.map((p) => p.message.id))
      expect([...counts.keys()].sort()).toEqual(ids)
      expect([...counts.values()].every((n) => n === 1)).toBe(true)
      expect(relays.reduce((sum, relay) => sum + relay.stats.published, 0)).toBe(ids.length)
    })
  })
}
