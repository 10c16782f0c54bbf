// The procedures transaction mode calls on the caller's transaction when Idem opened it through a
// mysql2 pool: each is one round trip that carries a transaction edge with it. claim may open the
// transaction (START TRANSACTION inside a procedure leaves it open after the CALL returns), and
// complete may commit it, only when the record was still this claim's: BEGIN + claim and
// completion + COMMIT are one round trip each, without the connection option multipleStatements.

import { MYSQL_NOW_MS as NOW_MS } from '../../sql/core/clock.js'
import { CLAIM_VARIABLES, claimAnswer, lockedClaim } from './mysql-claim-sql.js'

/** CREATE PROCEDURE statements for `t` (already quoted), named as `names` says. */
export function inboxProcedures(t: string, names: { claim: string; complete: string }): string[] {
  const header = 'MODIFIES SQL DATA SQL SECURITY INVOKER'
  return [
    // claim(begin, id, fingerprint, token, leaseMs, ttlMs): with begin = 1, START TRANSACTION
    // first. Then the claim under the row's lock, as begin makes it, without a read-only answer
    // first: the caller's transaction must hold the row's lock until it ends (a racer then waits
    // for its outcome), and a plain read would fix the caller's REPEATABLE READ snapshot before
    // its own first read. No handler: an error ends the CALL, and the caller rolls back. A
    // transaction it began that claimed nothing (a duplicate: nothing was written, the function
    // will not run) is committed here, releasing the row at once and sparing the caller the
    // COMMIT's round trip; the answer's committed column says so.
    `CREATE PROCEDURE \`${names.claim}\`(IN p_begin BOOLEAN, IN p_id VARBINARY(1024), IN p_fingerprint BLOB,
  IN p_token VARBINARY(64), IN p_lease_ms BIGINT, IN p_ttl_ms BIGINT)
  ${header}
BEGIN
  ${CLAIM_VARIABLES}
  DECLARE v_committed BOOLEAN DEFAULT FALSE;
  IF p_begin THEN START TRANSACTION; END IF;
  SET v_now = ${NOW_MS};
  ${lockedClaim(t, { id: 'p_id', fingerprint: 'p_fingerprint', token: 'p_token', leaseMs: 'p_lease_ms', ttlMs: 'p_ttl_ms' })}
  IF p_begin AND v_outcome <> 'acquired' THEN
    COMMIT;
    SET v_committed = TRUE;
  END IF;
  ${claimAnswer('v_committed AS committed, ')}
END`,

    // complete(commit, id, token, result, ttlMs): complete()'s conditional UPDATE (it always
    // changes the row it matches, so ROW_COUNT() is 1 for the owner with or without
    // CLIENT_FOUND_ROWS); with commit = 1, COMMIT when it matched, and only then. A claim that is
    // no longer this token's leaves the transaction open for the caller to roll back.
    `CREATE PROCEDURE \`${names.complete}\`(IN p_commit BOOLEAN, IN p_id VARBINARY(1024),
  IN p_token VARBINARY(64), IN p_result LONGBLOB, IN p_ttl_ms BIGINT)
  ${header}
BEGIN
  DECLARE v_now BIGINT DEFAULT ${NOW_MS};
  DECLARE v_owned INT;
  UPDATE ${t} SET state = 'completed', token = NULL, lease_until = NULL, result = p_result,
      updated_at = v_now, expires_at = v_now + p_ttl_ms
    WHERE id = p_id AND token = p_token AND state = 'in_progress' AND expires_at > v_now;
  SET v_owned = ROW_COUNT();
  IF v_owned = 1 AND p_commit THEN COMMIT; END IF;
  SELECT v_owned AS owned;
END`,
  ]
}
