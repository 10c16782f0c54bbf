// The audit log in a PostgreSQL table: one row per entry, `seq` the primary key, the entry's
// JSON as text (kept byte for byte: jsonb would reorder and reformat it, and what is verified is
// what was written).
//
// Append-only is for the database to enforce, not this class. ensureSchema() revokes UPDATE,
// DELETE and TRUNCATE from PUBLIC, which only removes what was granted to everyone; the owner of
// a table can always change it. The grants an operator should set:
//   - an admin role owns the table and runs ensureSchema() (or the DDL from auditTableSchema());
//   - the writer role (the gateway or the application) gets only
//       GRANT SELECT, INSERT ON idem_audit_log TO idem_audit_writer;
//     SELECT because the writer resumes the chain from the last row;
//   - auditors get SELECT only, and nobody but the admin gets UPDATE, DELETE or TRUNCATE.
// With that, the writer's credentials cannot rewrite history; the chain and the signed
// checkpoints make any change by the admin detectable.
//
// A multi-row INSERT is one statement, so a batch lands entirely or not at all: there are no
// torn rows after a crash. The primary key makes a second writer's append fail instead of forking
// the chain.

import type { PgQueryable } from '../drivers/pg.js'
import { AuditIntegrityError } from './errors.js'
import type { AuditEntry, AuditStorage } from './types.js'

export const DEFAULT_AUDIT_TABLE = 'idem_audit_log'

/** As the Idem SQL stores check names: letters, digits and `_`, at most PostgreSQL's 63 bytes. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** Rows per page of `read()`: a bounded amount in memory however long the log. */
const PAGE_ROWS = 1000

export interface PostgresAuditStorageOptions {
  /** A pg Pool (or a connected Client) that you own: `close()` does not end it. */
  client: PgQueryable
  /** Default `idem_audit_log`. Letters, digits and `_`; quoted, so case is kept. */
  table?: string
}

/** The table's DDL, for a migration run by the role that should own it. */
export function auditTableSchema(table: string = DEFAULT_AUDIT_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS ${quotedTable(table)} (
  seq   bigint PRIMARY KEY CHECK (seq > 0),
  entry text   NOT NULL
)`
}

export class PostgresAuditStorage implements AuditStorage {
  readonly table: string
  readonly #client: PgQueryable
  readonly #quoted: string

  constructor(options: PostgresAuditStorageOptions) {
    this.table = options.table ?? DEFAULT_AUDIT_TABLE
    this.#quoted = quotedTable(this.table)
    this.#client = options.client
  }

  /**
   * Create the table if it is missing and, as its owner, revoke UPDATE, DELETE and TRUNCATE from
   * PUBLIC. `revoked` is false when this role does not own the table (a writer role that did not
   * create it, as it should be): the grants are then the owner's to set. (A REVOKE by a non-owner
   * succeeds with a mere warning and changes nothing, hence the ownership check.)
   */
  async ensureSchema(): Promise<{ revoked: boolean }> {
    // CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table exists, which a
    // writer role should not have: look first, create only what is missing.
    let table = await this.#tableOwnership()
    if (table === undefined) {
      await this.#client.query(auditTableSchema(this.table))
      table = { owned: true }
    }
    if (!table.owned) return { revoked: false }
    await this.#client.query(`REVOKE UPDATE, DELETE, TRUNCATE ON ${this.#quoted} FROM PUBLIC`)
    return { revoked: true }
  }

  /** Undefined when the table does not exist (by the search path, as the other statements resolve it). */
  async #tableOwnership(): Promise<{ owned: boolean } | undefined> {
    const { rows } = await this.#client.query(
      `SELECT pg_has_role(c.relowner, 'USAGE') AS owned FROM pg_class c WHERE c.oid = to_regclass($1)`,
      [this.#quoted],
    )
    const row = rows[0] as { owned: boolean } | undefined
    return row === undefined ? undefined : { owned: row.owned }
  }

  async append(entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return
    // One statement whatever the batch size: two array parameters instead of 2·n placeholders
    // (which would stop at PostgreSQL's 65535 parameters).
    await this.#client.query(
      `INSERT INTO ${this.#quoted} (seq, entry) SELECT * FROM unnest($1::bigint[], $2::text[])`,
      [entries.map((entry) => entry.seq), entries.map((entry) => JSON.stringify(entry))],
    )
  }

  async last(): Promise<AuditEntry | undefined> {
    const { rows } = await this.#client.query(`SELECT seq, entry FROM ${this.#quoted} ORDER BY seq DESC LIMIT 1`)
    const row = rows[0] as Row | undefined
    if (row === undefined) return undefined
    const entry = parseRow(row)
    // Rows are inserted whole: a row that is not an entry was written by something else, and
    // guessing where the chain ends would fork it. The operator has to look.
    if ('torn' in entry) throw new AuditIntegrityError(Number(row.seq), `row in ${this.table} is not a JSON entry`)
    return entry
  }

  async *read(): AsyncIterable<AuditEntry | { torn: string; position: number }> {
    // Keyset pagination: each page starts after the last seq seen, so a page costs the same at
    // the end of a long log as at its start, and rows appended meanwhile are read too.
    let after = 0
    for (;;) {
      const { rows } = await this.#client.query(
        `SELECT seq, entry FROM ${this.#quoted} WHERE seq > $1 ORDER BY seq LIMIT ${PAGE_ROWS}`,
        [after],
      )
      for (const row of rows as Row[]) yield parseRow(row)
      if (rows.length < PAGE_ROWS) return
      after = Number((rows[rows.length - 1] as Row).seq)
    }
  }

  /** Nothing to release: the pool is the caller's. */
  async close(): Promise<void> {}
}

interface Row {
  /** bigint: pg returns it as a string. */
  seq: string | number
  entry: string
}

/** The row's entry, or `{ torn, position }` (the position is the row's seq) when it is not a JSON object. */
function parseRow(row: Row): AuditEntry | { torn: string; position: number } {
  try {
    const value: unknown = JSON.parse(row.entry)
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as AuditEntry
  } catch {
    // falls through: not JSON
  }
  return { torn: row.entry, position: Number(row.seq) }
}

function quotedTable(table: string): string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) {
    throw new TypeError(`Table name must match ${TABLE_NAME}, got ${JSON.stringify(table)}`)
  }
  // Validated to letters, digits and underscores: quoting only preserves their case.
  return `"${table}"`
}
