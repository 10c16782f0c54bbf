// idem/mysql: the MySQL 8 / MariaDB store on mysql2 (an optional peer dependency).

export type { MysqlClient, MysqlEndableClient, MysqlQueryOptions } from '../../drivers/mysql2.js'
export {
  fromMysql2,
  type Mysql2ConnectionLike,
  type Mysql2PoolLike,
  mysql2Executor,
} from '../../sql/mysql2/mysql2-database.js'
export { NOW_MS, PROCEDURE_VERSION } from './mysql-procedures.js'
export {
  DEFAULT_MYSQL_TABLE,
  type MysqlSchemaOptions,
  mysqlDropSchema,
  mysqlSchema,
  mysqlTableSchema,
} from './mysql-schema.js'
export { MysqlStore, type MysqlStoreOptions } from './mysql-store.js'
