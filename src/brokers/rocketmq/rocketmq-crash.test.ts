// A RocketMQ consumer process SIGKILLed inside a handler: its message stays invisible until its
// invisible duration runs out, then RocketMQ delivers it again to the next process, which handles
// it (and the other messages) exactly once. Against the real broker (test/services/rocketmq.sh).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import type { Producer } from 'rocketmq-client-nodejs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import { runCrashWorker } from '../../../test/support/brokers/crash-worker.test-helper.js'
import {
  createTopics,
  ROCKETMQ_GRPC_PORT,
  send,
  startProducer,
  uniqueName,
} from '../../../test/support/brokers/rocketmq/rocketmq.test-helper.js'
import { SqliteStore } from '../../stores/sqlite/sqlite-store.js'

const WORKER = fileURLToPath(
  new URL('../../../test/support/brokers/rocketmq/rocketmq-crash.worker.ts', import.meta.url),
)
/** Run the worker; with `crash`, SIGKILL it as soon as it reports being inside a handler. */
const runWorker = (args: string[], crash: boolean) => runCrashWorker(WORKER, args, crash, 30_000)

if (await requireService('RocketMQ', ROCKETMQ_GRPC_PORT)) {
  describe.concurrent('a RocketMQ consumer process killed with SIGKILL mid-handler', () => {
    const modes = ['transaction', 'run'] as const
    const topics = { transaction: uniqueName('idem_rmq_crash_tx'), run: uniqueName('idem_rmq_crash_run') }
    const dir = mkdtempSync(join(tmpdir(), 'idem-rocketmq-crash-'))
    let producer: Producer

    beforeAll(async () => {
      await createTopics(...Object.values(topics).flatMap((t) => [t, `${t}_dead`]))
      producer = await startProducer()
    }, 60_000)
    afterAll(async () => {
      await producer?.shutdown()
      rmSync(dir, { recursive: true, force: true })
    })

    for (const mode of modes) {
      it(`has the redelivery processed once, and its neighbours once (${mode} mode)`, { timeout: 40_000 }, async () => {
        const topic = topics[mode]
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
          const keys = ['crash-1', 'crash-2', 'crash-3']
          for (const [i, key] of keys.entries()) {
            await send(producer, topic, { n: i }, { properties: { 'idem-key': key } })
          }
          const args = ['--topic', topic, '--group', uniqueName('g'), '--db', file, '--mode', mode]

          const killed = await runWorker(args, true)
          expect(killed.signal).toBe('SIGKILL')
          const victim = killed.reports.find((r) => r.inHandler)?.inHandler
          expect(keys).toContain(victim)
          // In transaction mode the effect was written, but never committed.
          expect(effects()).toEqual({})

          const survivor = await runWorker([...args, '--expect', String(keys.length)], false)
          expect(effects()).toEqual({ 'crash-1': 1, 'crash-2': 1, 'crash-3': 1 })
          // The killed worker's message came back from RocketMQ, as its second delivery or later.
          const redelivery = survivor.reports.find((r) => r.received === victim)
          expect(redelivery?.deliveryCount).toBeGreaterThanOrEqual(2)
          expect(survivor.reports.filter((r) => r.outcome === 'executed')).toHaveLength(3)
        } finally {
          setup.close()
        }
      })
    }
  })
}
