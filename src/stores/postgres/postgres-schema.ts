// The PostgreSQL objects behind PostgresStore: a table, its expiry index and three plpgsql
// functions. Exported as SQL text so that users can put it in their own migrations.

import { beginFunctions, completeManyFunction } from './postgres-functions.js'

export const DEFAULT_POSTGRES_SCHEMA = 'public'
export const DEFAULT_POSTGRES_TABLE = 'idem_records'

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
// 49 characters leaves room for the longest derived name, `<table>_complete_many`, within
// PostgreSQL's 63-byte identifier limit (longer names would be truncated silently).
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,48}$/

export interface PostgresSchemaOptions {
  /** Default `public`. */
  schema?: string
  /** Default `idem_records`. */
  table?: string
}

/** The quoted, schema-qualified names of every object the store uses. */
export interface PostgresNames {
  schema: string
  table: string
  /** `"schema"."table"` */
  qualifiedTable: string
  index: string
  begin: string
  beginMany: string
  completeMany: string
}

export function postgresNames(options: PostgresSchemaOptions = {}): PostgresNames {
  const schema = options.schema ?? DEFAULT_POSTGRES_SCHEMA
  const table = options.table ?? DEFAULT_POSTGRES_TABLE
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new TypeError(`Schema name must match ${SCHEMA_NAME}, got ${JSON.stringify(schema)}`)
  }
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) {
    throw new TypeError(`Table name must match ${TABLE_NAME}, got ${JSON.stringify(table)}`)
  }
  // Validated above to letters, digits and underscores, so quoting only preserves their case.
  const q = (name: string) => `"${name}"`
  const inSchema = (name: string) => `${q(schema)}.${q(name)}`
  return {
    schema,
    table,
    qualifiedTable: inSchema(table),
    index: q(`${table}_expires_at`),
    begin: inSchema(`${table}_begin`),
    beginMany: inSchema(`${table}_begin_many`),
    completeMany: inSchema(`${table}_complete_many`),
  }
}

/**
 * The server's clock in whole milliseconds since the epoch. `clock_timestamp()` is the instant
 * of the call, not the start of the transaction like `now()`, so a statement that waited for a
 * row lock judges leases by the time it actually decides.
 */
export const NOW_MS = `floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

/**
 * DDL for the records table and its functions, idempotent (`IF NOT EXISTS`, `CREATE OR
 * REPLACE`). Times are bigint milliseconds since the epoch by the server's clock: exactly the
 * numbers the store contract returns, with no time zone or rounding between what is stored and
 * what a caller sees. The result is bytea holding the UTF-8 bytes of the string, so any string
 * (even one with U+0000, which `text` refuses) comes back byte-identical. The table is a normal,
 * logged table: records survive a server crash.
 */
export function postgresSchema(options: PostgresSchemaOptions = {}): string {
  const n = postgresNames(options)
  // CREATE SCHEMA needs the CREATE privilege on the database even when the schema exists.
  const createSchema = n.schema === DEFAULT_POSTGRES_SCHEMA ? '' : `CREATE SCHEMA IF NOT EXISTS "${n.schema}";\n`
  return `${createSchema}CREATE TABLE IF NOT EXISTS ${n.qualifiedTable} (
  id          text COLLATE "C" NOT NULL PRIMARY KEY,
  state       text    NOT NULL CHECK (state IN ('in_progress', 'completed')),
  fingerprint text    NOT NULL,
  token       text,
  lease_until bigint,
  attempt     integer NOT NULL,
  result      bytea,
  created_at  bigint  NOT NULL,
  updated_at  bigint  NOT NULL,
  expires_at  bigint  NOT NULL
);
-- sweep() finds the oldest expired rows through this index, however many records are kept.
CREATE INDEX IF NOT EXISTS ${n.index} ON ${n.qualifiedTable} (expires_at);
${beginFunctions(n, NOW_MS)}
${completeManyFunction(n, NOW_MS)}
`
}
