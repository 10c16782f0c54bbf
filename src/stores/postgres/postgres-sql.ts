// The statements PostgresStore sends, one per operation. Each reads the server's clock once
// (a CTE of clock_timestamp(), materialised because it is volatile) and decides in one
// conditional statement; zero rows touched is the answer "not owned" (LEASE_LOST).

import { POSTGRES_NOW_MS as NOW_MS } from '../../sql/core/clock.js'
import type { PostgresNames } from './postgres-names.js'

/** In the error completeOrFail raises when the claim is no longer the caller's. */
export const NOT_OWNED = 'idem_claim_not_owned'

const COLUMNS = 'id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at'

export function postgresStatements(n: PostgresNames) {
  const t = n.qualifiedTable
  const clock = `WITH clock AS (SELECT ${NOW_MS} AS now)`
  // A claim is owned by a token while the record is in progress, holds that token and is not expired.
  const owned = `x.id = $1 AND x.token = $2 AND x.state = 'in_progress' AND x.expires_at > clock.now`
  return {
    // ($1 id, $2 fingerprint, $3 token, $4 lease_ms, $5 ttl_ms): see the function in postgres-functions.ts.
    begin: `SELECT * FROM ${n.begin}($1, $2, $3, $4, $5)`,
    // ($1 ids, $2 fingerprints, $3 tokens, $4 lease_ms, $5 ttl_ms): answers back in input order.
    beginMany: `SELECT * FROM ${n.beginMany}($1::text[], $2::text[], $3::text[], $4, $5) ORDER BY ord`,
    // ($1 ids, $2 tokens, $3 results (NULL = too large), $4 ttl_ms)
    completeMany: `SELECT * FROM ${n.completeMany}($1::text[], $2::text[], $3::bytea[], $4) ORDER BY ord`,
    // ($1 id, $2 token, $3 result, $4 ttl_ms). The row lock makes a racing takeover either
    // commit first (the token then differs on the re-checked row: zero rows) or wait for us.
    complete: `${clock}
      UPDATE ${t} AS x SET state = 'completed', token = NULL, lease_until = NULL, result = $3,
        updated_at = clock.now, expires_at = clock.now + $4::bigint
      FROM clock WHERE ${owned}`,
    // ($1 id, $2 token, $3 result, $4 ttl_ms): complete, failing when it matches no row, for
    // transaction mode to send with COMMIT in one text (a failed statement stops the text before
    // COMMIT). Plain SQL cannot raise, so a cast of a string that is not a number does, in the
    // CASE branch taken only then (not constant, so never folded while planning).
    completeOrFail: `${clock}, done AS (
        UPDATE ${t} AS x SET state = 'completed', token = NULL, lease_until = NULL, result = $3,
          updated_at = clock.now, expires_at = clock.now + $4::bigint
        FROM clock WHERE ${owned} RETURNING 1
      )
      SELECT CASE WHEN count(*) = 1 THEN 1 ELSE ('${NOT_OWNED} ' || count(*))::integer END AS owned FROM done`,
    // ($1 id, $2 fingerprint, $3 token, $4 lease_ms, $5 ttl_ms, $6 result): transaction mode's
    // claim that settles a key with no record (see settleFunctions).
    settle: `SELECT * FROM ${n.settle}($1, $2, $3, $4, $5, $6)`,
    // Whether the functions added after the first three exist (see FunctionPresence).
    hasLaterFunctions: `SELECT to_regprocedure('${n.settle}(text, text, text, bigint, bigint, bytea)') IS NOT NULL
      AND to_regprocedure('${n.resettle}(text, bytea)') IS NOT NULL
      AND to_regprocedure('${n.complete}(text, text, bytea, bigint)') IS NOT NULL AS present`,
    // ($1 id, $2 token, $3 result, $4 ttl_ms): complete, in the function of that name; answers done = 1 when owned.
    completeCall: `SELECT ${n.complete}($1, $2, $3, $4) AS done`,
    // ($1 id, $2 result): see the resettle function.
    resettle: `SELECT ${n.resettle}($1, $2)`,
    // ($1 id, $2 token): drop the claim so that the next begin executes afresh.
    release: `${clock} DELETE FROM ${t} AS x USING clock WHERE ${owned}`,
    // ($1 id, $2 token, $3 lease_ms): retention never ends before the lease.
    extend: `${clock}
      UPDATE ${t} AS x SET lease_until = clock.now + $3::bigint, updated_at = clock.now,
        expires_at = greatest(x.expires_at, clock.now + $3::bigint)
      FROM clock WHERE ${owned}
      RETURNING x.lease_until`,
    // ($1 id): an expired row reads as absent.
    get: `${clock} SELECT ${COLUMNS} FROM ${t} AS x, clock WHERE x.id = $1 AND x.expires_at > clock.now`,
    // ($1 id): removes the row whatever its state; true only when it had not expired.
    delete: `${clock} DELETE FROM ${t} AS x USING clock WHERE x.id = $1 RETURNING x.expires_at > clock.now AS live`,
    // ($1 limit): the oldest expired rows through the expires_at index, at most $1, skipping rows
    // a concurrent begin is rewriting (it is making them live again, or will leave them for the
    // next sweep). The clock is an InitPlan parameter, so the index range scan can use it; the
    // ids go back as an array, so the DELETE is a primary-key lookup whatever the statistics say.
    sweep: `${clock}, doomed AS (
        SELECT x.id FROM ${t} AS x WHERE x.expires_at <= (SELECT now FROM clock)
        ORDER BY x.expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
      )
      DELETE FROM ${t} AS x WHERE x.id = ANY (ARRAY(SELECT id FROM doomed))`,
  }
}

export type PostgresStatements = ReturnType<typeof postgresStatements>
