// idem/sql: the seam between transaction mode and your data layer (one method that runs one
// statement), and the adapters for pg, mysql2 and better-sqlite3. None loads its driver.

export {
  type BetterSqlite3Like,
  betterSqlite3Executor,
  fromBetterSqlite3,
} from './better-sqlite3/better-sqlite3-database.js'
export {
  placeholder,
  type SqlDatabase,
  type SqlDialect,
  type SqlExecutor,
  type SqlResult,
  type TransactionEdges,
} from './core/executor.js'
export { hasInbox, type Inbox, type InboxStore } from './core/inbox.js'
export { inSavepoint } from './core/savepoint.js'
export { fromMysql2, type Mysql2ConnectionLike, type Mysql2PoolLike, mysql2Executor } from './mysql2/mysql2-database.js'
export { fromPg, type PgClientLike, type PgPoolLike, pgExecutor } from './pg/pg-database.js'
