// A consumer process killed with SIGKILL in the middle of a handler, then started again with the
// same client id: the broker resends what was not acknowledged (dup=1) and each message takes
// effect once. Effects are rows in a SQLite file the test reads, never the children's stdout.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  cleanUp,
  createSession,
  isolatedPrefix,
  MOSQUITTO_PORT,
  mqttUrl,
  plainClient,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
import { SqliteStore } from '../../stores/sqlite/sqlite-store.js'
import { mqttProducer } from './mqtt-producer.js'

const REPO = fileURLToPath(new URL('../../..', import.meta.url))
const CHILD = fileURLToPath(new URL('../../../test/support/brokers/mqtt/mqtt-crash.worker.ts', import.meta.url))

interface Child {
  process: ChildProcess
  /** Resolves when the child printed `line`. */
  said(line: string, timeoutMs?: number): Promise<void>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stderr(): string
}

/** Every child started, so that a failed test leaves none running. */
const children = new Set<ChildProcess>()

function startChild(args: readonly string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: REPO, stdio: 'pipe' })
  children.add(child)
  let stdout = ''
  let stderr = ''
  const waiters: (() => void)[] = []
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    for (const wake of waiters.splice(0)) wake()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 20_000) stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return {
    process: child,
    exited,
    stderr: () => `${stderr.trim()}\nstdout: ${stdout.trim()}`,
    said: (line, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child never said "${line}": ${stderr.trim()}`)), timeoutMs)
        const check = () => {
          if (stdout.split('\n').includes(line)) {
            clearTimeout(timer)
            resolve()
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer)
            reject(new Error(`child exited before saying "${line}": ${stderr.trim()}`))
          } else {
            waiters.push(check)
          }
        }
        check()
        void exited.then(() => check())
      }),
  }
}

interface Effect {
  id: string
  n: number
  delivery_count: number
}

if (await requireService('Mosquitto', MOSQUITTO_PORT)) {
  describe('consumeMqtt across a consumer process killed with SIGKILL', () => {
    const prefix = isolatedPrefix('crash')
    const dir = mkdtempSync(join(tmpdir(), 'idem-mqtt-crash-'))
    afterAll(async () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await cleanUp()
      rmSync(dir, { recursive: true, force: true })
    })

    /** A SQLite file with Idem's table and `effects`, a session subscribed to a fresh topic, and five messages in it. */
    async function prepare(name: string) {
      const file = join(dir, `${name}.db`)
      new SqliteStore({ client: file }).close()
      const db = new Database(file)
      db.exec('CREATE TABLE effects (id TEXT PRIMARY KEY, n INTEGER NOT NULL, delivery_count INTEGER NOT NULL)')
      const clientId = `${prefix}-${name}`
      const topic = `${prefix}/${name}`
      await createSession(clientId, topic)
      const producer = mqttProducer({ client: await plainClient(), topic })
      for (const id of ['m1', 'm2', 'm3', 'm4', 'm5']) await producer.publish({ id, payload: { id } })
      const args = ['--db', file, '--url', mqttUrl(), '--topic', topic, '--client-id', clientId]
      const effects = () => db.prepare('SELECT id, n, delivery_count FROM effects ORDER BY id').all() as Effect[]
      return { args: [...args, '--dead-letter', `${topic}/dead`], effects, db }
    }

    async function finishWithSecondProcess(args: string[], effects: () => Effect[]): Promise<Effect[]> {
      const second = startChild(args)
      await second.said('ready')
      const deadline = Date.now() + 20_000
      while (effects().length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      second.process.kill('SIGTERM')
      const end = await second.exited
      expect(end, second.stderr()).toEqual({ code: 0, signal: null })
      return effects()
    }

    it('transaction mode: the message whose transaction died with the process commits once, on redelivery', async () => {
      const { args, effects, db } = await prepare('tx')
      const first = startChild([...args, '--mode', 'tx', '--crash-key', 'm3'])
      await first.said('crashing m3')
      expect((await first.exited).signal).toBe('SIGKILL')
      // m1 and m2 were committed and acknowledged; m3's write died with its transaction.
      expect(effects().map((e) => e.id)).toEqual(['m1', 'm2'])

      const rows = await finishWithSecondProcess([...args, '--mode', 'tx'], effects)
      expect(rows.map((e) => [e.id, e.n])).toEqual([
        ['m1', 1],
        ['m2', 1],
        ['m3', 1],
        ['m4', 1],
        ['m5', 1],
      ])
      // m3 was handled by the redelivery: the broker flagged it dup, so it counts as the second delivery.
      expect(rows.find((e) => e.id === 'm3')?.delivery_count).toBeGreaterThanOrEqual(2)
      db.close()
    })

    it("run mode: the redelivery waits out the dead process's lease, takes over and runs once", async () => {
      const { args, effects, db } = await prepare('run')
      const first = startChild([...args, '--mode', 'run', '--hang-key', 'm3', '--lease', '2s'])
      await first.said('in-handler m3')
      first.process.kill('SIGKILL')
      expect((await first.exited).signal).toBe('SIGKILL')
      expect(effects().map((e) => e.id)).toEqual(['m1', 'm2'])

      const rows = await finishWithSecondProcess([...args, '--mode', 'run', '--lease', '2s'], effects)
      expect(rows.map((e) => [e.id, e.n])).toEqual([
        ['m1', 1],
        ['m2', 1],
        ['m3', 1],
        ['m4', 1],
        ['m5', 1],
      ])
      // dup (2), then handed to Idem again by this process once the dead claim's lease had lapsed (3).
      expect(rows.find((e) => e.id === 'm3')?.delivery_count).toBeGreaterThanOrEqual(3)
      db.close()
    })
  })
}
