// The claim under a record's row lock, as SQL text shared by the procedures that claim: begin (one
// record, its own transaction), begin_many (a batch, one transaction) and claim (transaction mode,
// the caller's transaction). Each pastes it into its body; none of it starts or ends a transaction.

import { MYSQL_NOW_MS as NOW_MS } from '../../sql/core/clock.js'

/** The variables `lockedClaim` reads and writes; declare them first in the procedure's body. */
export const CLAIM_VARIABLES = `DECLARE v_now BIGINT;
  DECLARE v_state VARCHAR(16);
  DECLARE v_fingerprint BLOB;
  DECLARE v_token VARBINARY(64);
  DECLARE v_lease_until BIGINT;
  DECLARE v_attempt INT UNSIGNED;
  DECLARE v_result LONGBLOB;
  DECLARE v_updated_at BIGINT;
  DECLARE v_expires_at BIGINT;
  DECLARE v_outcome VARCHAR(16);`

/** The SQL expressions a claim is made of (parameters or variables of the procedure). */
export interface ClaimArguments {
  id: string
  fingerprint: string
  token: string
  leaseMs: string
  ttlMs: string
}

/**
 * 1. INSERT the fresh claim; if the id exists, ON DUPLICATE KEY UPDATE id = id changes nothing but
 *    takes the row's exclusive lock (a plain INSERT IGNORE would take a shared lock, and two racers
 *    upgrading shared locks deadlock). Every racer on an id queues on that one row lock.
 * 2. Read the row under the lock (FOR UPDATE reads the latest committed version whatever the
 *    isolation level). Our token in it means our INSERT created it: acquired.
 * 3. Otherwise read the clock again (we may have waited for the lock) and decide exactly as
 *    decideBegin does, in its order:
 *      expired             → overwrite with a fresh claim, attempt 1      → acquired
 *      fingerprint differs → no write                                     → mismatch
 *      completed           → no write                                     → completed
 *      lease live          → no write                                     → in_progress
 *      lease lapsed        → new token, attempt + 1, new lease (takeover) → acquired
 * Leaves the answer in v_outcome, v_state, v_attempt, v_lease_until, v_result, v_updated_at and
 * v_now (read by `claimAnswer`). `v_now` must be set before it (the fresh claim's times).
 */
export function lockedClaim(t: string, a: ClaimArguments): string {
  const retention = `GREATEST(${a.ttlMs}, ${a.leaseMs})`
  return `INSERT INTO ${t} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
        VALUES (${a.id}, 'in_progress', ${a.fingerprint}, ${a.token}, v_now + ${a.leaseMs}, 1, NULL, v_now, v_now,
                v_now + ${retention})
        ON DUPLICATE KEY UPDATE id = id;
      SELECT state, fingerprint, token, lease_until, attempt, result, updated_at, expires_at
        INTO v_state, v_fingerprint, v_token, v_lease_until, v_attempt, v_result, v_updated_at, v_expires_at
        FROM ${t} WHERE id = ${a.id} FOR UPDATE;
      IF v_token <=> ${a.token} THEN
        SET v_outcome = 'acquired';
      ELSE
        SET v_now = ${NOW_MS};
        IF v_expires_at <= v_now THEN
          UPDATE ${t} SET state = 'in_progress', fingerprint = ${a.fingerprint}, token = ${a.token},
              lease_until = v_now + ${a.leaseMs}, attempt = 1, result = NULL, created_at = v_now,
              updated_at = v_now, expires_at = v_now + ${retention}
            WHERE id = ${a.id};
          SET v_outcome = 'acquired', v_state = 'in_progress', v_attempt = 1, v_lease_until = v_now + ${a.leaseMs};
        ELSEIF NOT (v_fingerprint <=> ${a.fingerprint}) THEN
          SET v_outcome = 'mismatch';
        ELSEIF v_state = 'completed' THEN
          SET v_outcome = 'completed';
        ELSEIF v_lease_until > v_now THEN
          SET v_outcome = 'in_progress';
        ELSE
          -- Retention never ends before the new lease does.
          UPDATE ${t} SET token = ${a.token}, lease_until = v_now + ${a.leaseMs}, attempt = attempt + 1,
              updated_at = v_now, expires_at = GREATEST(expires_at, v_now + ${retention})
            WHERE id = ${a.id};
          SET v_outcome = 'acquired', v_attempt = v_attempt + 1, v_lease_until = v_now + ${a.leaseMs};
        END IF;
      END IF;`
}

/** The one-row result set a claim answers with (toBeginResult reads it); `extra` adds columns first. */
export function claimAnswer(extra = ''): string {
  return `SELECT ${extra}v_outcome AS outcome, v_state AS state, v_attempt AS attempt, v_lease_until AS lease_until,
    v_lease_until - v_now AS retry_after_ms, IF(v_outcome = 'completed', v_result, NULL) AS result,
    v_updated_at AS completed_at;`
}
