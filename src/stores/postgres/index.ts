// idem/postgres: the PostgreSQL store on pg (an optional peer dependency, never imported here).

export { fromPg, type PgClientLike, type PgPoolLike, pgExecutor } from '../../sql/pg/pg-database.js'
export type { PgConnection, PgQueryable, PgQueryResult } from './postgres-driver.js'
export {
  DEFAULT_POSTGRES_SCHEMA,
  DEFAULT_POSTGRES_TABLE,
  type PostgresNames,
  type PostgresSchemaOptions,
  postgresNames,
  postgresSchema,
} from './postgres-schema.js'
export { PostgresStore, type PostgresStoreOptions } from './postgres-store.js'
