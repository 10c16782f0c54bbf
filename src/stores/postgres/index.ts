// idem/postgres: the PostgreSQL store on pg (an optional peer dependency, never imported here).

export type { PgConnection, PgQueryable, PgQueryResult } from '../../drivers/pg.js'
export { fromPg, type PgClientLike, type PgPoolLike, pgExecutor } from '../../sql/pg/pg-database.js'
export {
  DEFAULT_POSTGRES_SCHEMA,
  DEFAULT_POSTGRES_TABLE,
  type PostgresNames,
  type PostgresSchemaOptions,
  postgresNames,
} from './postgres-names.js'
export { postgresSchema } from './postgres-schema.js'
export { PostgresStore, type PostgresStoreOptions } from './postgres-store.js'
