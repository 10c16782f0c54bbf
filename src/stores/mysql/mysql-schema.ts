// The MySQL/MariaDB table and stored procedures behind MysqlStore; exported so that users can
// put them in their own migrations (one statement per array element, no DELIMITER needed).

import { mysqlProcedures, procedureNames } from './mysql-procedures.js'

export const DEFAULT_MYSQL_TABLE = 'idem_records'

// 47 characters leave room for the longest procedure suffix (`_complete_many_v3`) in MySQL's
// 64-character identifier limit.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,46}$/

export function assertMysqlIdentifier(name: string): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new TypeError(`Table name must match ${IDENTIFIER}, got ${JSON.stringify(name)}`)
  }
  return name
}

export interface MysqlSchemaOptions {
  /** Default `idem_records`. The procedures are named after it (`<table>_begin_v3`, …). */
  table?: string
}

/**
 * DDL for the records table.
 * - `id` is VARBINARY: compared byte for byte, so 'Key' ≠ 'key' and 'k' ≠ 'k ' (a VARCHAR with
 *   a PAD SPACE collation, which MySQL 8's `ascii_bin` is, would make 'k' and 'k ' one key).
 * - `result` is a LONGBLOB holding the result's UTF-8 bytes, so it round-trips byte-identically
 *   whatever the connection's character set; `maxResultBytes` bounds it.
 * - Times are BIGINT epoch milliseconds computed on the server (`NOW_MS`, mysql-procedures.ts):
 *   the contract speaks epoch ms, comparisons are exact integers, and no DATETIME or time-zone
 *   conversion is involved.
 * - The index on `expires_at` keeps `sweep` bounded however many records are retained.
 */
export function mysqlTableSchema(table: string = DEFAULT_MYSQL_TABLE): string {
  const t = assertMysqlIdentifier(table)
  return `CREATE TABLE IF NOT EXISTS \`${t}\` (
  id          VARBINARY(1024) NOT NULL,
  state       ENUM('in_progress', 'completed') CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fingerprint BLOB NOT NULL,
  token       VARBINARY(64) NULL,
  lease_until BIGINT NULL,
  attempt     INT UNSIGNED NOT NULL,
  result      LONGBLOB NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY \`${t}_expires_at\` (expires_at)
) ENGINE = InnoDB`
}

/**
 * Every statement the store needs, in order: the table, then its stored procedures. Run each
 * with `query()` (or your migration tool's raw SQL); a procedure is created once per version.
 */
export function mysqlSchema(options: MysqlSchemaOptions = {}): string[] {
  const table = assertMysqlIdentifier(options.table ?? DEFAULT_MYSQL_TABLE)
  return [mysqlTableSchema(table), ...mysqlProcedures(table)]
}

/** The statements that remove the table and its procedures (a down migration, or test cleanup). */
export function mysqlDropSchema(options: MysqlSchemaOptions = {}): string[] {
  const table = assertMysqlIdentifier(options.table ?? DEFAULT_MYSQL_TABLE)
  return [
    ...Object.values(procedureNames(table)).map((name) => `DROP PROCEDURE IF EXISTS \`${name}\``),
    `DROP TABLE IF EXISTS \`${table}\``,
  ]
}
