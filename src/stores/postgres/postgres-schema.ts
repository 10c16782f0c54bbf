// The PostgreSQL objects behind PostgresStore: a table, its expiry index and six plpgsql
// functions. Exported as SQL text so that users can put it in their own migrations.

import { POSTGRES_NOW_MS } from '../../sql/core/clock.js'
import { beginFunctions, completeFunction, completeManyFunction, settleFunctions } from './postgres-functions.js'
import { DEFAULT_POSTGRES_SCHEMA, type PostgresSchemaOptions, postgresNames } from './postgres-names.js'

/**
 * The server's clock in whole milliseconds since the epoch. `clock_timestamp()` is the instant
 * of the call, not the start of the transaction like `now()`, so a statement that waited for a
 * row lock judges leases by the time it actually decides.
 */
export const NOW_MS = POSTGRES_NOW_MS

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
${settleFunctions(n, NOW_MS)}
${completeFunction(n, NOW_MS)}`
}
