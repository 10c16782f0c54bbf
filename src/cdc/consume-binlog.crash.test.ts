// The promise of idem/cdc under crashes: a consumer process is SIGKILLed again and again while it
// applies a stream of source transactions (inserts, updates, deletes, multi-row and multi-table
// transactions), sometimes in the middle of a target transaction, and restarted. At the end the
// target equals the source, and the apply counts show that no change was applied twice.

import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import type { WorkerArgs } from '../../test/support/cdc/cdc-consumer.worker.js'
import {
  applyCounts,
  checkpointOf,
  eventually,
  openTarget,
  SOURCE_DDL,
  snapshot,
  type Target,
  writeWorkload,
} from '../../test/support/cdc/cdc-rig.test-helper.js'
import {
  type PrivateMariadb,
  requireMariadbBinaries,
  startPrivateMariadb,
} from '../../test/support/cdc/private-mariadb.test-helper.js'

const SUITE = 'consumeBinlog killed mid-stream (a private MariaDB 3310–3319 as source, the shared MariaDB as target)'
const WORKER = new URL('../../test/support/cdc/cdc-consumer.worker.ts', import.meta.url).pathname
const KILLS = 4
const CHUNK = 80

if ((await requireService('MariaDB', SERVICES.MariaDB.port)) && (await requireMariadbBinaries(SUITE))) {
  describe(SUITE, () => {
    let server: PrivateMariadb | undefined
    let source: mysql.Connection
    let target: Target
    const children = new Set<ChildProcess>()

    beforeAll(async () => {
      server = await startPrivateMariadb()
      source = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root' })
      for (const statement of SOURCE_DDL) await source.query(statement)
      target = await openTarget({ url: SERVICES.MariaDB.url, prefix: isolatedName('cdccrash') }, true)
    }, 90_000)

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL')
      await target?.drop()
      await target?.close()
      await source?.end()
      await server?.dispose()
    })

    const gtidNow = async () => {
      const [[row]] = (await source.query('SELECT @@gtid_binlog_pos AS pos')) as unknown as [[{ pos: string }]]
      return row.pos
    }
    const recorded = async (key: string) => {
      const [rows] = (await target.pool.query(`SELECT id FROM ${target.names.records} WHERE id LIKE ?`, [
        `%:${key}`,
      ])) as unknown as [unknown[]]
      return rows.length > 0
    }

    /** Start a consumer process; resolves once it reads, with a way to wait for its report lines. */
    const startChild = async (args: WorkerArgs) => {
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(args)], {
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      children.add(child)
      let stderr = ''
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      const lines: Record<string, unknown>[] = []
      const waiting: {
        test: (line: Record<string, unknown>) => boolean
        resolve: (line: Record<string, unknown>) => void
      }[] = []
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
        const line = JSON.parse(text) as Record<string, unknown>
        lines.push(line)
        for (const waiter of waiting.splice(0)) {
          if (waiter.test(line)) waiter.resolve(line)
          else waiting.push(waiter)
        }
      })
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      const line = (test: (line: Record<string, unknown>) => boolean) =>
        Promise.race([
          new Promise<Record<string, unknown>>((resolve) => {
            const found = lines.find(test)
            if (found !== undefined) resolve(found)
            else waiting.push({ test, resolve })
          }),
          exited.then(() => {
            throw new Error(`the consumer process exited: ${stderr}`)
          }),
        ])
      await line((l) => l.started === true)
      const kill = async () => {
        child.kill('SIGKILL')
        await exited
        children.delete(child)
      }
      return { child, line, kill }
    }

    it(`ends with the target equal to the source and nothing applied twice, across ${KILLS} SIGKILLs`, async () => {
      const from = { gtid: await gtidNow() }
      const args: WorkerArgs = {
        target: target.spec,
        port: (server as PrivateMariadb).port,
        serverId: 7001,
        name: 'crash',
        from,
      }
      let nextId = 1
      let stoppedMidTransaction = 0
      for (let kill = 0; kill < KILLS; kill++) {
        // The source keeps writing while the consumer runs.
        const writing = writeWorkload(source, CHUNK, 1000 + kill, nextId)
        nextId += CHUNK * 4
        const before = (await applyCounts(target)).transactions
        const consumer = await startChild(args)
        await eventually(
          'the consumer makes progress',
          async () => (await applyCounts(target)).transactions >= before + 10,
        )
        if (kill % 2 === 0) {
          // Stopped inside a target transaction: its first change applied, nothing committed.
          consumer.child.stdin?.write('arm\n')
          // A transaction of two changes after the arming, in case the workload is all applied.
          await writing
          const id = 900_000 + kill * 10
          await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (?, ?, 0), (?, ?, 0)', [
            id,
            'armed',
            id + 1,
            'armed',
          ])
          const { stoppedIn } = await consumer.line((l) => typeof l.stoppedIn === 'string')
          await consumer.kill()
          expect(await recorded(stoppedIn as string)).toBe(false)
          stoppedMidTransaction += 1
        } else {
          await consumer.kill()
        }
        await writing
      }
      expect(stoppedMidTransaction).toBeGreaterThan(0)

      const last = await startChild(args)
      const end = await gtidNow()
      await eventually('the consumer catches up', async () => (await checkpointOf(target, 'crash')) === end, 120_000)
      await last.kill()

      const { source: s, target: t } = await snapshot(source, target)
      expect(s.items.length).toBeGreaterThan(50)
      expect(s.ledger.length).toBeGreaterThan(20)
      expect(t.items).toEqual(s.items)
      expect(t.ledger).toEqual(s.ledger)
      const counts = await applyCounts(target)
      expect(counts.twice).toBe(0)
      // One idempotency record per applied source transaction, none without its changes.
      const [[records]] = (await target.pool.query(`SELECT COUNT(*) AS n FROM ${target.names.records}`)) as unknown as [
        [{ n: number }],
      ]
      expect(Number(records.n)).toBe(counts.transactions)
    }, 240_000)
  })
}
