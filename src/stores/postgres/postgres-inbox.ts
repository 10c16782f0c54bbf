// PostgresStore's claim and completion on the caller's transaction. The begin function needs no
// change: it is a plpgsql function (no COMMIT of its own), and under READ COMMITTED each of its
// statements sees what committed before it, so a racer's claim is waited for, then read.

import type { Inbox } from '../../sql/core/inbox.js'
import type { PostgresNames } from './postgres-names.js'
import { type BeginRow, toBeginResult } from './postgres-rows.js'
import type { PostgresStatements } from './postgres-sql.js'

export function postgresInbox(names: PostgresNames, statements: PostgresStatements): Inbox {
  return {
    dialect: 'postgres',
    table: names.qualifiedTable,
    async claim(sql, id, fingerprint, token, leaseMs, ttlMs) {
      const { rows } = await sql.execute(statements.begin, [id, fingerprint, token, leaseMs, ttlMs])
      return toBeginResult(rows[0] as unknown as BeginRow)
    },
    async complete(sql, id, token, result, ttlMs) {
      const done = await sql.execute(statements.complete, [id, token, Buffer.from(result, 'utf8'), ttlMs])
      return done.affectedRows === 1
    },
  }
}
