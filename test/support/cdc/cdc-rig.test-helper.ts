// What the binlog CDC tests share: a source schema on a private MariaDB, a target on the shared
// MariaDB (tables named per test, an idempotency store, a checkpoint table), the apply function
// that mirrors the source tables into the target and counts every application of every change
// (so that a change applied twice shows as a count of 2), and the comparisons at the end.

import mysql from 'mysql2/promise'
import type { ApplyContext, RowChange } from '../../../src/cdc/types.js'
import { Idempotency } from '../../../src/core/idempotency.js'
import { mysqlDropSchema } from '../../../src/stores/mysql/mysql-schema.js'
import { MysqlStore } from '../../../src/stores/mysql/mysql-store.js'

/** Source tables the tests write; `cdc_src.noise` is never followed. */
export const SOURCE_DDL = [
  'CREATE DATABASE IF NOT EXISTS cdc_src',
  'CREATE TABLE IF NOT EXISTS cdc_src.items (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL, n INT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS cdc_src.ledger (id INT PRIMARY KEY, item INT NOT NULL, amount INT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS cdc_src.noise (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL)',
]

export const FOLLOWED = ['cdc_src.items', 'cdc_src.ledger']

/** Where a target lives, in a form a child process can be handed. */
export interface TargetSpec {
  url: string
  prefix: string
}

export interface Target {
  spec: TargetSpec
  pool: mysql.Pool
  idempotency: Idempotency
  store: MysqlStore
  names: { items: string; ledger: string; applied: string; checkpoints: string; records: string }
  drop(): Promise<void>
  close(): Promise<void>
}

export function targetNames(prefix: string) {
  return {
    items: `${prefix}_items`,
    ledger: `${prefix}_ledger`,
    applied: `${prefix}_applied`,
    checkpoints: `${prefix}_cp`,
    records: `${prefix}_rec`,
  }
}

/** Connect to (and with `create`, create) the target tables of `spec`. */
export async function openTarget(spec: TargetSpec, create: boolean): Promise<Target> {
  const pool = mysql.createPool({ uri: spec.url, connectionLimit: 4 })
  const names = targetNames(spec.prefix)
  const store = new MysqlStore({ client: pool, table: names.records })
  if (create) {
    await store.ensureSchema()
    await pool.query(`CREATE TABLE ${names.items} (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL, n INT NOT NULL)`)
    await pool.query(`CREATE TABLE ${names.ledger} (id INT PRIMARY KEY, item INT NOT NULL, amount INT NOT NULL)`)
    await pool.query(
      `CREATE TABLE ${names.applied} (txn VARCHAR(255) NOT NULL, idx INT NOT NULL, times INT NOT NULL, PRIMARY KEY (txn, idx))`,
    )
  }
  const idempotency = new Idempotency({ store })
  return {
    spec,
    pool,
    idempotency,
    store,
    names,
    drop: async () => {
      for (const table of [names.items, names.ledger, names.applied, names.checkpoints]) {
        await pool.query(`DROP TABLE IF EXISTS ${table}`)
      }
      for (const statement of mysqlDropSchema({ table: names.records })) await pool.query(statement)
    },
    close: () => pool.end(),
  }
}

type Connection = { query(sql: string, values?: unknown[]): Promise<unknown> }

/** Mirror one source change into the target, and count its application. */
export function mirror(names: Target['names']) {
  return async (change: RowChange, tx: unknown, context: ApplyContext): Promise<void> => {
    const connection = tx as Connection
    const table = change.table === 'items' ? names.items : names.ledger
    const row = (change.after ?? change.before) as Record<string, unknown>
    if (change.kind === 'delete') {
      await connection.query(`DELETE FROM ${table} WHERE id = ?`, [row.id])
    } else if (change.table === 'items') {
      await connection.query(
        `INSERT INTO ${table} (id, v, n) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v), n = VALUES(n)`,
        [row.id, row.v, row.n],
      )
    } else {
      await connection.query(
        `INSERT INTO ${table} (id, item, amount) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE item = VALUES(item), amount = VALUES(amount)`,
        [row.id, row.item, row.amount],
      )
    }
    await connection.query(
      `INSERT INTO ${names.applied} (txn, idx, times) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE times = times + 1`,
      [context.transaction.key, change.index],
    )
  }
}

/** Source rows and target rows of both followed tables, to compare. */
export async function snapshot(source: Connection, target: Target) {
  const rows = async (connection: Connection, sql: string) =>
    ((await connection.query(sql)) as [Record<string, unknown>[]])[0]
  return {
    source: {
      items: await rows(source, 'SELECT id, v, n FROM cdc_src.items ORDER BY id'),
      ledger: await rows(source, 'SELECT id, item, amount FROM cdc_src.ledger ORDER BY id'),
    },
    target: {
      items: await rows(target.pool, `SELECT id, v, n FROM ${target.names.items} ORDER BY id`),
      ledger: await rows(target.pool, `SELECT id, item, amount FROM ${target.names.ledger} ORDER BY id`),
    },
  }
}

/** How many changes were applied more than once (must be 0), and how many were applied at all. */
export async function applyCounts(target: Target): Promise<{ twice: number; changes: number; transactions: number }> {
  const [[row]] = (await target.pool.query(
    `SELECT COALESCE(SUM(times > 1), 0) AS twice, COUNT(*) AS changes, COUNT(DISTINCT txn) AS transactions FROM ${target.names.applied}`,
  )) as unknown as [[{ twice: unknown; changes: unknown; transactions: unknown }]]
  return { twice: Number(row.twice), changes: Number(row.changes), transactions: Number(row.transactions) }
}

/** The consumer's stored checkpoint GTID position, if any. */
export async function checkpointOf(target: Target, name: string): Promise<string | undefined> {
  const [rows] = (await target.pool.query(`SELECT gtid FROM ${target.names.checkpoints} WHERE name = ?`, [
    name,
  ])) as unknown as [{ gtid: string | null }[]]
  return rows[0]?.gtid ?? undefined
}

/** Poll `check` until it holds, up to `timeoutMs`; throws with `what` otherwise. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A small deterministic generator, so a failing workload can be run again as it was. */
export function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/**
 * Write `count` source transactions: single and multi-row inserts, updates, deletes, multi-statement
 * transactions, transactions spanning items and ledger, and some on a table nobody follows.
 */
export async function writeWorkload(source: mysql.Connection, count: number, seed: number, firstId = 1): Promise<void> {
  const next = random(seed)
  const live: number[] = []
  let id = firstId
  const pick = () => live[Math.floor(next() * live.length)] as number
  for (let i = 0; i < count; i++) {
    const roll = next()
    if (roll < 0.25 || live.length < 3) {
      const rows = 1 + Math.floor(next() * 3)
      const values = Array.from({ length: rows }, () => {
        live.push(id)
        return [id++, `v${i}`, i]
      })
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES ?', [values])
    } else if (roll < 0.45) {
      await source.query('UPDATE cdc_src.items SET v = ?, n = n + 1 WHERE id = ?', [`u${i}`, pick()])
    } else if (roll < 0.55) {
      const gone = pick()
      live.splice(live.indexOf(gone), 1)
      await source.query('DELETE FROM cdc_src.items WHERE id = ?', [gone])
    } else if (roll < 0.8) {
      await source.beginTransaction()
      live.push(id)
      await source.query('INSERT INTO cdc_src.items (id, v, n) VALUES (?, ?, ?)', [id++, `t${i}`, i])
      await source.query('UPDATE cdc_src.items SET n = n + 10 WHERE id IN (?, ?)', [pick(), pick()])
      await source.query('INSERT INTO cdc_src.ledger (id, item, amount) VALUES (?, ?, ?)', [
        i + firstId * 10,
        pick(),
        i,
      ])
      const gone = pick()
      live.splice(live.indexOf(gone), 1)
      await source.query('DELETE FROM cdc_src.items WHERE id = ?', [gone])
      await source.commit()
    } else if (roll < 0.9) {
      await source.query('UPDATE cdc_src.items SET v = CONCAT(v, ?) WHERE id % 7 = ?', ['+', i % 7])
    } else {
      await source.query('REPLACE INTO cdc_src.noise (id, v) VALUES (?, ?)', [i % 5, `x${i}`])
    }
  }
}
