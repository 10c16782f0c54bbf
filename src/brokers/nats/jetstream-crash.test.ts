import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import type { NatsConnection } from 'nats'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import { runCrashWorker } from '../../../test/support/brokers/crash-worker.test-helper.js'
import {
  connectNats,
  createTopology,
  NATS_PORT,
  type Topology,
  waitFor,
} from '../../../test/support/brokers/nats/nats.test-helper.js'
import { SqliteStore } from '../../stores/sqlite/sqlite-store.js'
import { jetStreamProducer } from './jetstream-producer.js'

const WORKER = fileURLToPath(new URL('../../../test/support/brokers/nats/jetstream-crash.worker.ts', import.meta.url))
/** Run the worker; with `crash`, SIGKILL it as soon as it reports being inside a handler. */
const runWorker = (args: string[], crash: boolean) => runCrashWorker(WORKER, args, crash, 25_000)

if (await requireService('NATS JetStream', NATS_PORT)) {
  describe('a JetStream consumer process killed with SIGKILL mid-handler', () => {
    let nc: NatsConnection
    const topologies: Topology[] = []
    const dir = mkdtempSync(join(tmpdir(), 'idem-nats-crash-'))

    beforeAll(async () => {
      nc = await connectNats()
    })
    afterAll(async () => {
      for (const t of topologies) await t.remove()
      await nc.close()
      rmSync(dir, { recursive: true, force: true })
    })

    for (const mode of ['transaction', 'run'] as const) {
      it(`has the redelivery processed once, and its neighbours once (${mode} mode)`, { timeout: 60_000 }, async () => {
        // A short ack_wait so that JetStream redelivers the killed worker's message soon.
        const t = await createTopology(nc, `idem_js_crash_${mode}`, { ackWaitMs: 2000 })
        topologies.push(t)
        const file = join(dir, `${mode}.db`)
        const setup = new Database(file)
        new SqliteStore({ client: setup }).ensureSchema()
        setup.exec('CREATE TABLE effects (key TEXT PRIMARY KEY, n INTEGER NOT NULL)')
        const effects = () =>
          Object.fromEntries(
            (setup.prepare('SELECT key, n FROM effects ORDER BY key').all() as { key: string; n: number }[]).map(
              (r) => [r.key, r.n],
            ),
          )
        try {
          const producer = jetStreamProducer({ client: nc.jetstream(), subject: t.subject })
          const keys = ['crash-1', 'crash-2', 'crash-3']
          for (const [i, id] of keys.entries()) await producer.publish({ id, payload: { n: i } })
          const args = ['--stream', t.stream, '--durable', t.durable, '--db', file, '--mode', mode]

          const killed = await runWorker(args, true)
          expect(killed.signal).toBe('SIGKILL')
          expect(killed.reports.find((r) => r.inHandler)?.inHandler).toBe('crash-1')
          // In transaction mode the effect was written, but never committed.
          expect(effects()).toEqual({})

          const survivor = await runWorker([...args, '--expect', String(keys.length)], false)
          expect(effects()).toEqual({ 'crash-1': 1, 'crash-2': 1, 'crash-3': 1 })
          // The killed worker's message came back from JetStream, as its second delivery or later.
          const redelivery = survivor.reports.find((r) => r.received === 'crash-1')
          expect(redelivery?.deliveryCount).toBeGreaterThanOrEqual(2)
          await waitFor('nothing left unacknowledged', async () => {
            const info = await t.consumerInfo()
            return info.num_pending === 0 && info.num_ack_pending === 0
          })
        } finally {
          setup.close()
        }
      })
    }
  })
}
