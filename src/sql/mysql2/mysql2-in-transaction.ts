// Whether a mysql2 connection is inside a transaction, before Idem joins it: MySQL and MariaDB
// accept SAVEPOINT outside one without complaint, and every statement would then commit alone.

import type { Mysql2ConnectionLike } from '../../drivers/mysql2.js'

/** The server status flags of the protocol's OK packet (the same on MySQL and MariaDB). */
const IN_TRANSACTION = 0x0001
const AUTOCOMMIT = 0x0002

/**
 * Resolve when `connection` is in a transaction (START TRANSACTION / beginTransaction, or
 * autocommit off); otherwise reject with a TypeError that says what to pass instead. `DO 0`
 * does nothing, and its OK packet carries the session's status flags. A driver that does not
 * report them is let through.
 */
export async function assertMysql2InTransaction(connection: Mysql2ConnectionLike, adapter: string): Promise<void> {
  const [header] = await connection.query('DO 0')
  const status = (header as { serverStatus?: unknown } | null)?.serverStatus
  if (typeof status !== 'number') return
  if ((status & IN_TRANSACTION) === 0 && (status & AUTOCOMMIT) !== 0) {
    throw new TypeError(
      `${adapter}: the connection passed is not inside a transaction (each statement would commit on its own). ` +
        'Pass the pool to let Idem open the transaction, or call beginTransaction() first.',
    )
  }
}
