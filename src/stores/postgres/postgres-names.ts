// The names of the PostgreSQL objects behind PostgresStore, checked and quoted once.

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
  /** Transaction mode's claim that settles a new key, and the value that replaces its result (see settleFunctions). */
  settle: string
  resettle: string
  /** `complete` as a function (its plan prepared once per connection), where the schema has it. */
  complete: string
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
    settle: inSchema(`${table}_settle`),
    resettle: inSchema(`${table}_resettle`),
    complete: inSchema(`${table}_complete`),
  }
}
