// The SQLite table behind SqliteStore; exported so that users can put it in their own migrations.

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

export const DEFAULT_SQLITE_TABLE = 'idem_records'

export function assertSqliteIdentifier(name: string): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new TypeError(`Table name must match ${IDENTIFIER}, got ${JSON.stringify(name)}`)
  }
  return name
}

/**
 * DDL for the records table. Times are integer milliseconds since the epoch. The index on
 * `expires_at` keeps `sweep` bounded however many records are retained.
 */
export function sqliteSchema(table: string = DEFAULT_SQLITE_TABLE): string {
  const t = assertSqliteIdentifier(table)
  return `CREATE TABLE IF NOT EXISTS ${t} (
  id          TEXT    NOT NULL PRIMARY KEY,
  state       TEXT    NOT NULL CHECK (state IN ('in_progress', 'completed')),
  fingerprint TEXT    NOT NULL,
  token       TEXT,
  lease_until INTEGER,
  attempt     INTEGER NOT NULL,
  result      TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ${t}_expires_at ON ${t} (expires_at);
`
}
