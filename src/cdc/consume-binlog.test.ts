// consumeBinlog against a MariaDB of the test's own (row binlog, GTIDs), applying into the shared
// MariaDB: resume from the checkpoint, a re-read transaction replayed and not applied again, a
// transaction over two tables applied as one, and the refusals of a source that cannot be consumed.

import mysql from 'mysql2/promise'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import {
  applyCounts,
  checkpointOf,
  eventually,
  FOLLOWED,
  mirror,
  openTarget,
  SOURCE_DDL,
  snapshot,
  type Target,
} from '../../test/support/cdc/cdc-rig.test-helper.js'
import {
  type PrivateMariadb,
  requireMariadbBinaries,
  startPrivateMariadb,
} from '../../test/support/cdc/private-mariadb.test-helper.js'
import { consumeBinlog } from './consume-binlog.js'
import { CdcError } from './errors.js'
import type { BinlogConsumer, ConsumeBinlogOptions, RowChange } from './types.js'

const SUITE = 'consumeBinlog (a private MariaDB 3310–3319 as source, the shared MariaDB as target)'

if ((await requireService('MariaDB', SERVICES.MariaDB.port)) && (await requireMariadbBinaries(SUITE))) {
  describe(SUITE, () => {
    let server: PrivateMariadb | undefined
    let source: mysql.Connection
    let target: Target
    const consumers: BinlogConsumer[] = []
    const sourceSettings = () => ({ host: '127.0.0.1', port: (server as PrivateMariadb).port, user: 'root' })
    const gtidNow = async () => {
      const [[row]] = (await source.query('SELECT @@gtid_binlog_pos AS pos')) as unknown as [[{ pos: string }]]
      return row.pos
    }

    beforeAll(async () => {
      server = await startPrivateMariadb()
      source = await mysql.createConnection({ ...sourceSettings() })
      for (const statement of SOURCE_DDL) await source.query(statement)
      target = await openTarget({ url: SERVICES.MariaDB.url, prefix: isolatedName('cdc') }, true)
    }, 90_000)

    afterAll(async () => {
      await target?.drop()
      await target?.close()
      await source?.end()
      await server?.dispose()
    })

    let name = ''

    afterEach(async () => {
      for (const consumer of consumers.splice(0)) await consumer.close()
    })

    const start = async (
      overrides: Partial<ConsumeBinlogOptions<unknown>> = {},
      consumerName = name,
    ): Promise<BinlogConsumer> => {
      const consumer = await consumeBinlog({
        source: sourceSettings(),
        client: target.pool,
        idempotency: target.idempotency,
        apply: mirror(target.names),
        serverId: 9001,
        name: consumerName,
        tables: FOLLOWED,
        checkpointTable: target.names.checkpoints,
        retryDelayMs: 10,
        ...overrides,
      })
      consumers.push(consumer)
      return consumer
    }
    const caughtUp = (consumerName = name) =>
      eventually(
        'the checkpoint reaches the source',
        async () => (await checkpointOf(target, consumerName)) === (await gtidNow()),
      )

    it('applies inserts, updates and deletes, and resumes after a restart from the checkpoint only', async () => {
      name = 'resume'
      await source.query('DELETE FROM cdc_src.items')
      const first = await start({ from: 'end' })
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (1, ?, 1), (2, ?, 2), (3, ?, 3)', ['a', 'b', 'c'])
      await source.query('UPDATE cdc_src.items SET v = ? WHERE id = 2', ['b2'])
      await source.query('DELETE FROM cdc_src.items WHERE id = 3')
      await caughtUp()
      expect(first.stats).toMatchObject({ applied: 3, replayed: 0, changes: 5 })
      await first.close()

      // Written while nobody reads: the next consumer starts at the checkpoint, not at 'end'.
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (4, ?, 4)', ['d'])
      await source.query('UPDATE cdc_src.items SET n = n * 10')
      const seen: RowChange[] = []
      const apply = mirror(target.names)
      const second = await start({
        from: 'end',
        apply: async (change, tx, context) => {
          seen.push(change)
          await apply(change, tx, context)
        },
      })
      await caughtUp()
      expect(seen.map((change) => change.kind)).toEqual(['insert', 'update', 'update', 'update'])
      expect(seen[1]).toMatchObject({
        kind: 'update',
        table: 'items',
        before: { id: 1, n: 1 },
        after: { id: 1, n: 10 },
      })
      expect(second.stats).toMatchObject({ applied: 2, replayed: 0 })
      const { source: s, target: t } = await snapshot(source, target)
      expect(t.items).toEqual(s.items)
      expect((await applyCounts(target)).twice).toBe(0)
    })

    it('replays a source transaction read a second time instead of applying it again', async () => {
      name = 'reread'
      const before = await gtidNow()
      const first = await start({ from: { gtid: before } })
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (100, ?, 1)', ['x'])
      await source.beginTransaction()
      await source.query('UPDATE cdc_src.items SET n = n + 1 WHERE id = 100')
      await source.query('INSERT INTO cdc_src.ledger (id, item, amount) VALUES (100, 100, 5)')
      await source.commit()
      await caughtUp()
      await first.close()
      const counted = await applyCounts(target)

      // As if the checkpoint had been lost or rewound: the same transactions come again.
      await target.pool.query(`UPDATE ${target.names.checkpoints} SET gtid = ? WHERE name = ?`, [before, name])
      const again = await start()
      await caughtUp()
      expect(again.stats).toMatchObject({ applied: 0, replayed: 2, changes: 0 })
      expect(await applyCounts(target)).toEqual(counted)
      expect(counted.twice).toBe(0)
    })

    it('applies a source transaction over two tables as one target transaction, and never skips a failed one', async () => {
      name = 'atomic'
      const first = await start({
        from: 'end',
        maxAttempts: 2,
        apply: async (change, tx, context) => {
          if (change.table === 'ledger' && change.after?.id === 200) throw new Error('the ledger write fails')
          await mirror(target.names)(change, tx, context)
        },
      })
      const errors: unknown[] = []
      first.done.catch((error: unknown) => errors.push(error))
      await source.beginTransaction()
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (200, ?, 1)', ['atomic'])
      await source.query('INSERT INTO cdc_src.ledger (id, item, amount) VALUES (200, 200, 7)')
      await source.commit()
      await expect(first.done).rejects.toMatchObject({ name: 'CdcError', code: 'APPLY_FAILED' })
      expect(first.stats).toMatchObject({ applied: 0, errors: 2 })
      // The items row of that transaction was rolled back with the failed ledger write.
      const [items] = (await target.pool.query(`SELECT id FROM ${target.names.items} WHERE id = 200`)) as unknown as [
        unknown[],
      ]
      expect(items).toEqual([])

      const second = await start()
      await caughtUp()
      expect(second.stats).toMatchObject({ applied: 1, changes: 2 })
      const [rows] = (await target.pool.query(
        `SELECT i.v, l.amount FROM ${target.names.items} i JOIN ${target.names.ledger} l ON l.item = i.id WHERE i.id = 200`,
      )) as unknown as [unknown[]]
      expect(rows).toEqual([{ v: 'atomic', amount: 7 }])
    })

    it('reads again from its last position on a new connection when the binlog connection is lost', async () => {
      name = 'reconnect'
      const errors: { error: unknown; fatal: boolean }[] = []
      const consumer = await start({ from: 'end', onError: (error, { fatal }) => errors.push({ error, fatal }) })
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (400, ?, 1)', ['before'])
      await caughtUp()
      const [threads] = (await source.query(
        "SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'",
      )) as unknown as [{ id: number }[]]
      expect(threads).toHaveLength(1)
      await source.query(`KILL ${threads[0]?.id}`)
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (401, ?, 1)', ['after'])
      await caughtUp()
      expect(consumer.stats).toMatchObject({ applied: 2, replayed: 0 })
      expect(errors).toEqual([{ error: expect.objectContaining({ code: 'STREAM_FAILED' }), fatal: false }])
      const [rows] = (await target.pool.query(
        `SELECT id FROM ${target.names.items} WHERE id IN (400, 401) ORDER BY id`,
      )) as unknown as [unknown[]]
      expect(rows).toEqual([{ id: 400 }, { id: 401 }])
    })

    describe('refuses a source it cannot consume', () => {
      it('binlog_format other than ROW', async () => {
        await source.query("SET GLOBAL binlog_format = 'MIXED'")
        try {
          await expect(start({}, 'format')).rejects.toMatchObject({ code: 'BINLOG_FORMAT_NOT_ROW' })
        } finally {
          await source.query("SET GLOBAL binlog_format = 'ROW'")
        }
      })

      it('partial row images', async () => {
        await source.query("SET GLOBAL binlog_row_image = 'MINIMAL'")
        try {
          await expect(start({}, 'image')).rejects.toMatchObject({ code: 'BINLOG_ROW_IMAGE_NOT_FULL' })
        } finally {
          await source.query("SET GLOBAL binlog_row_image = 'FULL'")
        }
      })

      it('a user without the replication privileges', async () => {
        await source.query("CREATE USER IF NOT EXISTS 'cdc_select'@'%'")
        await source.query("GRANT SELECT ON *.* TO 'cdc_select'@'%'")
        await source.query("CREATE USER IF NOT EXISTS 'cdc_monitor'@'%'")
        await source.query("GRANT SELECT, BINLOG MONITOR ON *.* TO 'cdc_monitor'@'%'")
        const as = (user: string) => ({ source: { ...sourceSettings(), user } })
        const noClient = await start(as('cdc_select'), 'select-only').then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(noClient).toBeInstanceOf(CdcError)
        expect(noClient).toMatchObject({ code: 'MISSING_PRIVILEGES' })
        expect((noClient as Error).message).toMatch(/REPLICATION CLIENT/)
        // Allowed to list binlogs, not to read them: refused when the stream opens.
        await expect(start(as('cdc_monitor'), 'monitor-only')).rejects.toMatchObject({ code: 'MISSING_PRIVILEGES' })
      })

      it('a checkpoint in binlogs the server has purged', async () => {
        const consumer = await start({ from: 'end' }, 'purged')
        await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (300, ?, 1)', ['p'])
        await caughtUp('purged')
        await consumer.close()
        await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (301, ?, 1)', ['q'])
        await source.query('FLUSH BINARY LOGS')
        // A binlog a dump thread still reads is not purged: wait for the closed consumers' threads to go.
        await eventually('no dump thread is left', async () => {
          const [threads] = (await source.query(
            "SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'",
          )) as unknown as [unknown[]]
          return threads.length === 0
        })
        const [logs] = (await source.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]]
        // Nor one still needed for crash recovery, until InnoDB has flushed its transactions.
        await eventually('the older binlogs are purged', async () => {
          await source.query(`PURGE BINARY LOGS TO '${logs[logs.length - 1]?.Log_name}'`)
          const [left] = (await source.query('SHOW BINARY LOGS')) as unknown as [unknown[]]
          return left.length === 1
        })
        const refused = await start({}, 'purged').then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(refused).toMatchObject({ name: 'CdcError', code: 'POSITION_UNAVAILABLE' })
        expect((refused as Error).message).toMatch(/purged/)
        // The checkpoint was left where it was: nothing was skipped.
        expect(await checkpointOf(target, 'purged')).not.toBe(await gtidNow())
      })

      it('a server without a binlog (the shared MariaDB, only read)', async () => {
        const [[row]] = (await target.pool.query('SELECT @@log_bin AS on_')) as unknown as [[{ on_: number }]]
        if (Number(row.on_) === 1) return // that server writes a binlog after all: nothing to show here
        await expect(
          start({ source: { host: '127.0.0.1', port: SERVICES.MariaDB.port, user: 'root' } }, 'off'),
        ).rejects.toMatchObject({ code: 'BINLOG_OFF' })
      })
    })
  })
}

describe('consumeBinlog options', () => {
  const base = {
    source: { host: '127.0.0.1', port: 1 },
    client: { getConnection() {}, query() {} },
    idempotency: { transaction() {} },
    apply() {},
    serverId: 5,
  } as unknown as ConsumeBinlogOptions<unknown>

  it.each([
    [{ serverId: 0 }, /serverId/],
    [{ serverId: undefined }, /serverId/],
    [{ apply: undefined }, /apply/],
    [{ idempotency: undefined }, /idempotency/],
    [{ client: {} }, /client/],
    [{ tables: ['items'] }, /schema\.table/],
    [{ tables: [] }, /tables/],
    [{ from: 'middle' }, /from/],
    [{ name: 'with space' }, /name/],
    [{ checkpointTable: 'drop table;' }, /checkpointTable/],
  ])('refuses %o before connecting', async (override, message) => {
    await expect(consumeBinlog({ ...base, ...override } as ConsumeBinlogOptions<unknown>)).rejects.toThrow(message)
  })
})
