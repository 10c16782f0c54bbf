// RocketMQ's transactional check-back against the real broker (test/services/rocketmq.sh): a
// producer SIGKILLed after its local commit but before telling the broker has its message
// delivered, once the broker asks this process's checker; one killed inside its local transaction
// has it rolled back, never delivered. The checker answers from the SQLite file both share.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { createTopics, quietLogger } from '../../../test/support/brokers/rocketmq/rocketmq.test-helper.js'
import { fromBetterSqlite3 } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import { type CheckedMessageLike, TransactionResolution } from './rocketmq-producer-driver.js'
import { transactionalProducer, transactionChecker } from './rocketmq-transactions.js'

const ENDPOINTS = SERVICES.RocketMQ.url
const REPO = fileURLToPath(new URL('../../..', import.meta.url))
const WORKER = join(REPO, 'test/support/brokers/rocketmq/transaction-producer.worker.ts')
const TOPIC = 'IdemCheckBack'
const TABLE = 'rocketmq_tx'

async function runWorker(args: string[]): Promise<{ lines: Record<string, string>[]; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk
  })
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk
  })
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, s) => resolve(s)))
  if (signal !== 'SIGKILL') throw new Error(`the worker was meant to die by SIGKILL; it exited: ${out}\n${err}`)
  return {
    lines: out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line)),
    signal,
  }
}

if (await requireService('RocketMQ', SERVICES.RocketMQ.port)) {
  describe('RocketMQ transactional check-back (real broker)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idem-rmq-tx-'))
    const file = join(dir, 'tx.db')
    const tag = isolatedName('tx')
    const database = new Database(file)
    database.pragma('busy_timeout = 10000')
    database.exec('CREATE TABLE effects (key TEXT PRIMARY KEY, n INTEGER NOT NULL)')
    const db = fromBetterSqlite3(database)
    const answers: { key: string | undefined; resolution: TransactionResolution }[] = []
    const received: { key: string | undefined; body: string }[] = []
    let checkerHost: Producer
    let consumer: SimpleConsumer
    let receiving = true
    let loop: Promise<void>

    beforeAll(async () => {
      await createTopics(`${TOPIC}:TRANSACTION`)
      await transactionalProducer({
        client: {
          send: async () => ({ messageId: '' }),
          beginTransaction: () => ({ commit: async () => {}, rollback: async () => {} }),
        },
        db,
        table: TABLE,
      }).ensureSchema()
      const checker = transactionChecker({ db, table: TABLE })
      // This process only answers check-backs: the broker asks a producer of the topic, any process's.
      checkerHost = new Producer({
        endpoints: ENDPOINTS,
        namespace: '',
        topic: TOPIC,
        logger: quietLogger,
        checker: {
          async check(message: CheckedMessageLike) {
            const resolution = await checker.check(message)
            answers.push({ key: message.properties.get('idem-key'), resolution })
            return resolution
          },
        },
      })
      await checkerHost.startup()
      consumer = new SimpleConsumer({
        endpoints: ENDPOINTS,
        namespace: '',
        consumerGroup: isolatedName('checkback'),
        subscriptions: new Map([[TOPIC, tag]]),
        awaitDuration: 3000,
        logger: quietLogger,
      })
      await consumer.startup()
      loop = (async () => {
        while (receiving) {
          const messages = await consumer.receive(16, 10_000).catch(() => [])
          for (const message of messages) {
            received.push({ key: message.properties.get('idem-key'), body: message.body.toString() })
            await consumer.ack(message)
          }
        }
      })()
    }, 60_000)

    afterAll(async () => {
      receiving = false
      await loop
      await consumer?.shutdown()
      await checkerHost?.shutdown()
      database.close()
      rmSync(dir, { recursive: true, force: true })
    })

    const args = (key: string, die: string) => [
      '--endpoints',
      ENDPOINTS,
      '--topic',
      TOPIC,
      '--tag',
      tag,
      '--key',
      key,
      '--db',
      file,
      '--table',
      TABLE,
      '--timeout',
      '3000',
      '--die',
      die,
    ]
    const effect = (key: string) =>
      (database.prepare('SELECT n FROM effects WHERE key = ?').get(key) as { n: number } | undefined)?.n ?? 0
    const until = async (what: string, ok: () => boolean, ms = 30_000) => {
      const end = Date.now() + ms
      while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await sleep(100)
      }
    }

    it('delivers the message of a producer killed after its local commit, once the check-back says COMMIT', async () => {
      const key = isolatedName('paid')
      const { lines } = await runWorker(args(key, 'after-local-commit'))
      expect(lines).toContainEqual({ inLocalTransaction: key })
      expect(effect(key)).toBe(1)
      await until('the message to arrive', () => received.some((m) => m.key === key))
      expect(answers).toContainEqual({ key, resolution: TransactionResolution.COMMIT })
      expect(received.filter((m) => m.key === key)).toEqual([{ key, body: JSON.stringify({ key }) }])
    }, 60_000)

    it('never delivers the message of a producer killed inside its local transaction', async () => {
      const key = isolatedName('unpaid')
      await runWorker(args(key, 'in-local-transaction'))
      expect(effect(key)).toBe(0)
      // Before the 3 s deadline the checker says UNKNOWN; after it, ROLLBACK.
      await until('the check-back to roll it back', () =>
        answers.some((a) => a.key === key && a.resolution === TransactionResolution.ROLLBACK),
      )
      await sleep(2000)
      expect(received.some((m) => m.key === key)).toBe(false)
    }, 60_000)
  })
}
