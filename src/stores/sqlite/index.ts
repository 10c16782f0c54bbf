// idem/sqlite: the embedded store on better-sqlite3 (an optional peer dependency).

export type { SqliteDatabase, SqliteStatement, SqliteTransaction } from '../../drivers/better-sqlite3.js'
export {
  type BetterSqlite3Like,
  betterSqlite3Executor,
  fromBetterSqlite3,
} from '../../sql/better-sqlite3/better-sqlite3-database.js'
export { DEFAULT_SQLITE_TABLE, sqliteSchema } from './sqlite-schema.js'
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js'
