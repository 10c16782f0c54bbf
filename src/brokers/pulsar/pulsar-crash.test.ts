// A consumer process SIGKILLed inside its handler: its socket dies with it, Pulsar hands the
// unacknowledged message to the next consumer, and Idem runs it to completion exactly once.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import { runCrashWorker } from '../../../test/support/brokers/crash-worker.test-helper.js'
import {
  deleteTopics,
  PULSAR_URL,
  PULSAR_WEB_PORT,
  subscriptionStats,
  uniqueTopic,
  waitForDrained,
} from '../../../test/support/brokers/pulsar/pulsar.test-helper.js'
import { SqliteStore } from '../../stores/sqlite/sqlite-store.js'
import { pulsarProducer } from './pulsar-producer.js'

const WORKER = fileURLToPath(new URL('../../../test/support/brokers/pulsar/pulsar-crash.worker.ts', import.meta.url))
/** Run the worker; with `crash`, SIGKILL it as soon as it reports being inside a handler. */
const runWorker = (args: string[], crash: boolean) => runCrashWorker(WORKER, args, crash, 25_000)

if (await requireService('Pulsar', PULSAR_WEB_PORT)) {
  describe('a Pulsar consumer process killed with SIGKILL mid-handler', () => {
    const topics: string[] = []
    const dir = mkdtempSync(join(tmpdir(), 'idem-pulsar-crash-'))

    afterAll(async () => {
      await deleteTopics(topics)
      rmSync(dir, { recursive: true, force: true })
    })

    for (const mode of ['transaction', 'run'] as const) {
      it(`has the redelivery processed once, and its neighbours once (${mode} mode)`, { timeout: 60_000 }, async () => {
        const topic = uniqueTopic(`crash_${mode}`)
        topics.push(topic)
        const subscription = 'worker'
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
          const producer = pulsarProducer({ url: PULSAR_URL, topic })
          const keys = ['crash-1', 'crash-2', 'crash-3']
          for (const [i, id] of keys.entries()) await producer.publish({ id, payload: { n: i } })
          await producer.close()
          const args = [
            '--url',
            PULSAR_URL,
            '--topic',
            topic,
            '--subscription',
            subscription,
            '--db',
            file,
            '--mode',
            mode,
          ]

          const killed = await runWorker(args, true)
          expect(killed.signal).toBe('SIGKILL')
          expect(killed.reports.find((r) => r.inHandler)?.inHandler).toBe('crash-1')
          // In transaction mode the effect was written, but never committed.
          expect(effects()).toEqual({})
          // Nothing was acknowledged: the killed worker's message is still the subscription's.
          expect((await subscriptionStats(topic, subscription))?.msgBacklog).toBe(3)

          const survivor = await runWorker([...args, '--expect', String(keys.length)], false)
          expect(effects()).toEqual({ 'crash-1': 1, 'crash-2': 1, 'crash-3': 1 })
          // The killed worker's message came back from Pulsar and was run here.
          expect(survivor.reports.filter((r) => r.settled === 'crash-1').map((r) => r.outcome)).toContain('executed')
          await waitForDrained(topic, subscription)
        } finally {
          setup.close()
        }
      })
    }
  })
}
