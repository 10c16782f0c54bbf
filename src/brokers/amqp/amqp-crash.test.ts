import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import {
  AMQP_PORT,
  AMQP_URL,
  connect,
  declareQueue,
  deleteQueueAndTopology,
  EffectLog,
  queueDepth,
  until,
} from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import { SqliteStore } from '../../stores/sqlite/sqlite-store.js'
import { amqpProducer } from './amqp-producer.js'

const WORKER = fileURLToPath(new URL('../../../test/support/brokers/amqp/amqp-crash.worker.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

interface Worker {
  child: ChildProcess
  output(): string
  waitFor(line: string): Promise<void>
  exited: Promise<NodeJS.Signals | number | null>
}

function startWorker(args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk
  })
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  )
  return {
    child,
    output: () => text,
    waitFor: (line) => until(() => text.includes(line), `"${line}" from the worker; it said: ${text}`, 30_000),
    exited,
  }
}

if (await requireService('RabbitMQ', AMQP_PORT)) {
  describe('consumeAmqp across a consumer process killed with SIGKILL', () => {
    let connection: amqp.ChannelModel
    const queues: string[] = []
    const logs: EffectLog[] = []

    beforeAll(async () => {
      connection = await connect('idem-amqp-crash-test')
    })
    afterAll(async () => {
      for (const queue of queues) await deleteQueueAndTopology(connection, queue, [200])
      await connection.close()
      for (const log of logs) log.close()
    })

    /** A queue holding one message, and a database file the workers share. */
    async function rig() {
      const channel = await connection.createChannel()
      const queue = await declareQueue(channel, isolatedName('idem_amqp_crash'), 'quorum')
      await channel.close()
      queues.push(queue)
      const log = new EffectLog()
      logs.push(log)
      log.db.exec(`
        ALTER TABLE effects ADD COLUMN delivery_count INTEGER;
        ALTER TABLE effects ADD COLUMN recovered INTEGER;
        CREATE TABLE outcomes (message_id TEXT NOT NULL, outcome TEXT NOT NULL);`)
      new SqliteStore({ client: log.db }).ensureSchema()
      const key = `${queue}:payment`
      const producer = amqpProducer({ client: connection, routingKey: queue })
      await producer.publish({ id: key, payload: { amount: 10 } })
      await producer.close()
      const args = (mode: 'tx' | 'run', ...flags: string[]) => [
        '--url',
        AMQP_URL,
        '--db',
        log.file,
        '--queue',
        queue,
        '--mode',
        mode,
        ...flags,
      ]
      const effects = () =>
        log.db.prepare('SELECT delivery_count, recovered FROM effects WHERE message_id = ?').all(key) as {
          delivery_count: number
          recovered: number
        }[]
      const outcomes = () =>
        (log.db.prepare('SELECT outcome FROM outcomes WHERE message_id = ?').all(key) as { outcome: string }[]).map(
          (r) => r.outcome,
        )
      /** Start the second worker, wait until it settled the redelivery, stop it. */
      const recover = async (mode: 'tx' | 'run') => {
        const second = startWorker(args(mode))
        try {
          await until(
            () => outcomes().some((o) => o === 'executed' || o === 'replayed'),
            'the redelivery settled',
            30_000,
          )
          await until(async () => (await queueDepth(connection, queue)) === 0, 'an empty queue')
        } finally {
          second.child.kill('SIGTERM')
        }
        expect(await second.exited, second.output()).toBe(0)
      }
      return { key, args, effects, outcomes, recover }
    }

    it('transaction mode: killed inside the uncommitted transaction, the redelivery is processed once', async () => {
      const { args, effects, outcomes, recover } = await rig()
      const first = startWorker(args('tx', '--stall'))
      await first.waitFor('HANDLING')
      first.child.kill('SIGKILL')
      expect(await first.exited).toBe('SIGKILL')

      await recover('tx')
      // One effect, from the second delivery: the killed one rolled back with its process.
      expect(effects()).toEqual([{ delivery_count: 2, recovered: 0 }])
      expect(outcomes()).toEqual(['executed'])
    }, 40_000)

    it('transaction mode: killed after the commit and before the ack, the redelivery is replayed', async () => {
      const { args, effects, outcomes, recover } = await rig()
      const first = startWorker(args('tx', '--die-before-ack'))
      expect(await first.exited, first.output()).toBe('SIGKILL')
      expect(effects()).toHaveLength(1)

      await recover('tx')
      expect(effects()).toEqual([{ delivery_count: 1, recovered: 0 }])
      expect(outcomes()).toEqual(['replayed'])
    }, 40_000)

    it('run mode: killed mid-handler, the redelivery takes over after the lease and runs once', async () => {
      const { args, effects, outcomes, recover } = await rig()
      const first = startWorker(args('run', '--stall'))
      await first.waitFor('HANDLING')
      first.child.kill('SIGKILL')
      expect(await first.exited).toBe('SIGKILL')

      await recover('run')
      const [effect, ...more] = effects()
      expect(more).toHaveLength(0)
      expect(effect?.recovered).toBe(1) // took over the dead worker's claim
      expect(effect?.delivery_count).toBeGreaterThanOrEqual(2)
      expect(outcomes().at(-1)).toBe('executed')
    }, 40_000)
  })
}
