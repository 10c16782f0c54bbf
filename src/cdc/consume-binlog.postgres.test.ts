// consumeBinlog into PostgreSQL (a pg Pool, PostgresStore records, the checkpoint table in the
// same schema): the whole binlog from its start, then a restart that finds nothing new to apply.

import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { eventually } from '../../test/support/cdc/cdc-rig.test-helper.js'
import {
  type PrivateMariadb,
  requireMariadbBinaries,
  startPrivateMariadb,
} from '../../test/support/cdc/private-mariadb.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { PostgresStore } from '../stores/postgres/postgres-store.js'
import { consumeBinlog } from './consume-binlog.js'
import type { RowChange } from './types.js'

const SUITE = 'consumeBinlog into PostgreSQL (a private MariaDB 3310–3319 as source)'

if ((await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) && (await requireMariadbBinaries(SUITE))) {
  describe(SUITE, () => {
    let server: PrivateMariadb | undefined
    let source: mysql.Connection
    let pool: pg.Pool
    const schema = isolatedName('cdc_pg')

    beforeAll(async () => {
      server = await startPrivateMariadb()
      source = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root' })
      pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 4 })
      await pool.query(`CREATE SCHEMA "${schema}"`)
      await pool.query(
        `CREATE TABLE "${schema}".accounts (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL)`,
      )
    }, 90_000)

    afterAll(async () => {
      await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool?.end()
      await source?.end()
      await server?.dispose()
    })

    it("applies the binlog from 'start' and resumes with nothing to apply again", async () => {
      // Written before any consumer exists: only 'start' reaches them.
      await source.query('CREATE DATABASE bank')
      await source.query(
        'CREATE TABLE bank.accounts (id INT PRIMARY KEY, owner VARCHAR(32) NOT NULL, balance INT NOT NULL)',
      )
      await source.query("INSERT INTO bank.accounts VALUES (1, 'ada', 100), (2, 'bob', 50), (3, 'cy', 0)")
      await source.beginTransaction()
      await source.query('UPDATE bank.accounts SET balance = balance - 30 WHERE id = 1')
      await source.query('UPDATE bank.accounts SET balance = balance + 30 WHERE id = 2')
      await source.commit()
      await source.query('DELETE FROM bank.accounts WHERE id = 3')

      const store = new PostgresStore({ client: pool, schema })
      await store.ensureSchema()
      const start = () =>
        consumeBinlog<pg.PoolClient>({
          source: { host: '127.0.0.1', port: (server as PrivateMariadb).port, user: 'root' },
          client: pool,
          idempotency: new Idempotency({ store }),
          serverId: 8101,
          tables: ['bank.accounts'],
          from: 'start',
          checkpointTable: `${schema}.cdc_checkpoints`,
          apply: async (change: RowChange, tx) => {
            const row = (change.after ?? change.before) as { id: number; owner: string; balance: number }
            if (change.kind === 'delete') await tx.query(`DELETE FROM "${schema}".accounts WHERE id = $1`, [row.id])
            else {
              await tx.query(
                `INSERT INTO "${schema}".accounts VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, balance = excluded.balance`,
                [row.id, row.owner, row.balance],
              )
            }
          },
        })
      const [[{ pos }]] = (await source.query('SELECT @@gtid_binlog_pos AS pos')) as unknown as [[{ pos: string }]]
      const first = await start()
      await eventually('the consumer reads to the end', async () => first.position?.gtid === pos)
      await first.close()
      expect(first.stats).toMatchObject({ applied: 3, changes: 6, replayed: 0 })
      const { rows } = await pool.query(`SELECT id, owner, balance FROM "${schema}".accounts ORDER BY id`)
      expect(rows).toEqual([
        { id: 1, owner: 'ada', balance: 70 },
        { id: 2, owner: 'bob', balance: 80 },
      ])
      const stored = await pool.query(`SELECT gtid FROM "${schema}".cdc_checkpoints WHERE name = 'default'`)
      expect(stored.rows).toEqual([{ gtid: pos }])

      const again = await start()
      await again.close()
      expect(again.stats).toMatchObject({ applied: 0, replayed: 0 })
      expect(again.position).toEqual({ gtid: pos, file: expect.any(String), position: expect.any(Number) })
    })
  })
}
