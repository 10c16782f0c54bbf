// How MysqlStore reports driver failures: every error from mysql2 becomes a StoreUnavailableError
// (fail-closed in the core) whose message names the server, with the driver's error as `cause`.

import type { MysqlDriverError } from '../../drivers/mysql2.js'
import { StoreUnavailableError } from '../../errors.js'

/** Socket and protocol failures: the server cannot be reached, or the connection was lost. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
])

/** Server errors that mean the table or its procedures were never created. */
const MISSING_SCHEMA = new Set([1146, 1305]) // ER_NO_SUCH_TABLE, ER_SP_DOES_NOT_EXIST

/** ER_NET_PACKET_TOO_LARGE: the statement is over the server's max_allowed_packet. */
const PACKET_TOO_LARGE = 1153

interface ConnectionConfig {
  host?: string
  port?: number
  socketPath?: string
}

/**
 * "MySQL at host:port", from the error (a socket error names the address it tried) or else from
 * the client's configuration: a mysql2 Pool keeps it at `pool.config.connectionConfig`, a
 * Connection at `connection.config`.
 */
export function describeServer(client: unknown, error?: MysqlDriverError): string {
  if (error?.address !== undefined && error.port !== undefined) return `MySQL at ${error.address}:${error.port}`
  const c = client as
    | { pool?: { config?: { connectionConfig?: ConnectionConfig } }; connection?: { config?: ConnectionConfig } }
    | undefined
  const config = c?.pool?.config?.connectionConfig ?? c?.connection?.config
  if (config?.socketPath) return `MySQL at ${config.socketPath}`
  if (config !== undefined) return `MySQL at ${config.host ?? 'localhost'}:${config.port ?? 3306}`
  return 'MySQL'
}

/**
 * InnoDB rolled this transaction back entirely: ER_LOCK_DEADLOCK (1213) to break a deadlock, or
 * MariaDB's ER_CHECKREAD (1020) when innodb_snapshot_isolation finds a row changed since the
 * transaction's snapshot.
 */
export function isRolledBack(error: unknown): boolean {
  const errno = (error as MysqlDriverError | undefined)?.errno
  return errno === 1213 || errno === 1020
}

/** Wrap a driver error for `operation`; errors that are already Idem's pass through. */
export function storeError(error: unknown, operation: string, client: unknown, table: string): Error {
  if (error instanceof StoreUnavailableError) return error
  const e = error as MysqlDriverError
  const server = describeServer(client, e)
  const message = e?.message ?? String(error)
  if (e?.fatal === true || (e?.code !== undefined && UNREACHABLE.has(e.code))) {
    return new StoreUnavailableError(`${server} is unreachable: ${message}`, { cause: error })
  }
  if (e?.errno !== undefined && MISSING_SCHEMA.has(e.errno)) {
    return new StoreUnavailableError(
      `${server}: ${message}. Create the table "${table}" and its procedures with store.ensureSchema() or the statements of mysqlSchema()`,
      { cause: error },
    )
  }
  if (e?.errno === PACKET_TOO_LARGE) {
    return new StoreUnavailableError(
      `${server} failed during ${operation}: ${message}. Results travel hex-encoded (twice their size): raise the server's max_allowed_packet or lower maxResultBytes`,
      { cause: error },
    )
  }
  return new StoreUnavailableError(`${server} failed during ${operation}: ${message}`, { cause: error })
}
