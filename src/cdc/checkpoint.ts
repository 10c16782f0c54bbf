// The checkpoint table: one row per consumer name holding the binlog position after the last
// source transaction it applied. The row is written by the same target transaction as that
// transaction's changes and its idempotency record, so it can never say more (or less) than what
// committed.

import { placeholder, type SqlDialect, type SqlExecutor } from '../sql/core/executor.js'
import { quote, tableName } from '../sql/core/identifiers.js'
import type { BinlogPosition } from './types.js'

export const DEFAULT_CHECKPOINT_TABLE = 'idem_cdc_checkpoints'

/** The DDL of the checkpoint table, for your own migrations (consumeBinlog runs it when `ensureSchema`). */
export function cdcCheckpointSchema(dialect: SqlDialect, table: string = DEFAULT_CHECKPOINT_TABLE): string {
  const t = quote(dialect, tableName(table, 'checkpointTable'))
  if (dialect === 'mysql') {
    return `CREATE TABLE IF NOT EXISTS ${t} (
  name VARCHAR(191) NOT NULL PRIMARY KEY,
  gtid TEXT NULL,
  binlog_file VARCHAR(255) NULL,
  binlog_position BIGINT NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
)`
  }
  const now = dialect === 'postgres' ? 'now()' : 'CURRENT_TIMESTAMP'
  const at = dialect === 'postgres' ? 'timestamptz' : 'TEXT'
  return `CREATE TABLE IF NOT EXISTS ${t} (
  name TEXT NOT NULL PRIMARY KEY,
  gtid TEXT NULL,
  binlog_file TEXT NULL,
  binlog_position BIGINT NULL,
  updated_at ${at} NOT NULL DEFAULT ${now}
)`
}

/** Reads and writes one consumer's row of a checkpoint table. */
export class CheckpointTable {
  readonly #table: string
  readonly #name: string

  constructor(table: string, name: string) {
    this.#table = table
    this.#name = name
    tableName(table, 'checkpointTable')
  }

  async load(sql: SqlExecutor): Promise<BinlogPosition | undefined> {
    const t = quote(sql.dialect, tableName(this.#table, 'checkpointTable'))
    const { rows } = await sql.execute(
      `SELECT gtid, binlog_file, binlog_position FROM ${t} WHERE name = ${placeholder(sql.dialect, 1)}`,
      [this.#name],
    )
    const row = rows[0]
    if (row === undefined) return undefined
    const position: BinlogPosition = {}
    if (typeof row.gtid === 'string') position.gtid = row.gtid
    if (typeof row.binlog_file === 'string') position.file = row.binlog_file
    if (row.binlog_position !== null && row.binlog_position !== undefined)
      position.position = Number(row.binlog_position)
    return position
  }

  /** Store `position`: overwrite (`replace`) or only when the row is missing. */
  async save(sql: SqlExecutor, position: BinlogPosition, mode: 'replace' | 'if-absent' = 'replace'): Promise<void> {
    const d = sql.dialect
    const t = quote(d, tableName(this.#table, 'checkpointTable'))
    const p = (n: number) => placeholder(d, n)
    const values = [this.#name, position.gtid ?? null, position.file ?? null, position.position ?? null]
    const insert = `INSERT INTO ${t} (name, gtid, binlog_file, binlog_position) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)})`
    if (d === 'mysql') {
      const text =
        mode === 'replace'
          ? `${insert} ON DUPLICATE KEY UPDATE gtid = VALUES(gtid), binlog_file = VALUES(binlog_file), binlog_position = VALUES(binlog_position), updated_at = CURRENT_TIMESTAMP(3)`
          : `${insert} ON DUPLICATE KEY UPDATE name = name`
      await sql.execute(text, values)
      return
    }
    const now = d === 'postgres' ? 'now()' : 'CURRENT_TIMESTAMP'
    const text =
      mode === 'replace'
        ? `${insert} ON CONFLICT (name) DO UPDATE SET gtid = excluded.gtid, binlog_file = excluded.binlog_file, binlog_position = excluded.binlog_position, updated_at = ${now}`
        : `${insert} ON CONFLICT (name) DO NOTHING`
    await sql.execute(text, values)
  }
}
