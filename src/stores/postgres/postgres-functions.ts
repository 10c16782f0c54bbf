// The plpgsql functions that make `begin`, `beginMany` and `completeMany` one round trip each,
// transaction mode's `settle` and `resettle`, and `complete` (a function for its prepared plan).
//
// Why a function and not one `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`: when
// the WHERE is false (a completed record, a live lease, a mismatch), RETURNING yields no row, and
// a SELECT in the same statement reads the statement's snapshot. Timeline of the trap, under
// READ COMMITTED:
//   t0  A: INSERT new key (uncommitted)
//   t1  B: statement starts, snapshot taken: A's row is not visible
//   t2  B: ON CONFLICT waits for A's transaction
//   t3  A: commits
//   t4  B: conflict → DO UPDATE ... WHERE false → no row; B's SELECT still sees no row (snapshot t1)
// B cannot answer `in_progress`. In a VOLATILE plpgsql function each statement takes a fresh
// snapshot, so the function reads, decides, writes conditionally, and when the write finds the
// row changed by a transaction that committed meanwhile, simply reads again (a new snapshot
// that now sees it). Read-only outcomes never write: no row lock, no new row version, no
// transaction id.

import type { PostgresNames } from './postgres-names.js'
import { NOT_OWNED } from './postgres-sql.js'

const BEGIN_COLUMNS = `outcome text, token text, attempt integer, recovered boolean, lease_until bigint,
  retry_after_ms bigint, result bytea, completed_at bigint, state text`

export function beginFunctions(n: PostgresNames, nowMs: string): string {
  const t = n.qualifiedTable
  return `-- begin(id, fingerprint, token, lease_ms, ttl_ms): claim a record atomically (see the store contract).
${beginFunction(n.begin, t, nowMs, 'begin')}
-- begin_many(ids[], fingerprints[], tokens[], lease_ms, ttl_ms): begin for each item, in one
-- transaction. Items are claimed in id order (then input order, so that duplicate ids behave as
-- sequential begins), which keeps two overlapping batches from deadlocking on each other's rows;
-- ord gives each answer's position in the input.
CREATE OR REPLACE FUNCTION ${n.beginMany}(
  p_ids text[], p_fingerprints text[], p_tokens text[], p_lease_ms bigint, p_ttl_ms bigint
) RETURNS TABLE (ord integer, ${BEGIN_COLUMNS})
LANGUAGE plpgsql VOLATILE AS $idem$
#variable_conflict use_column
DECLARE
  item record;
  b record;
BEGIN
  FOR item IN
    SELECT u.id, u.fp, u.tok, u.n FROM unnest(p_ids, p_fingerprints, p_tokens) WITH ORDINALITY AS u(id, fp, tok, n)
    ORDER BY u.id COLLATE "C", u.n
  LOOP
    SELECT * INTO b FROM ${n.begin}(item.id, item.fp, item.tok, p_lease_ms, p_ttl_ms);
    RETURN QUERY SELECT item.n::integer, b.outcome, b.token, b.attempt, b.recovered, b.lease_until,
      b.retry_after_ms, b.result, b.completed_at, b.state;
  END LOOP;
END
$idem$;`
}

export function completeManyFunction(n: PostgresNames, nowMs: string): string {
  const t = n.qualifiedTable
  return `-- complete_many(ids[], tokens[], results[], ttl_ms): complete for each item, in id order like
-- begin_many. A NULL result marks an item the client found over maxResultBytes (and did not
-- send): it reports too_large while the claim is still owned, lease_lost otherwise, and writes
-- nothing. Otherwise the same conditional UPDATE as complete(): owned (in progress, same token,
-- not expired) → completed; zero rows → lease_lost.
CREATE OR REPLACE FUNCTION ${n.completeMany}(
  p_ids text[], p_tokens text[], p_results bytea[], p_ttl_ms bigint
) RETURNS TABLE (ord integer, outcome text)
LANGUAGE plpgsql VOLATILE AS $idem$
#variable_conflict use_column
DECLARE
  item record;
  v_now bigint;
BEGIN
  FOR item IN
    SELECT u.id, u.tok, u.res, u.n FROM unnest(p_ids, p_tokens, p_results) WITH ORDINALITY AS u(id, tok, res, n)
    ORDER BY u.id COLLATE "C", u.n
  LOOP
    v_now := ${nowMs};
    ord := item.n;
    IF item.res IS NULL THEN
      PERFORM 1 FROM ${t} AS x
      WHERE x.id = item.id AND x.token = item.tok AND x.state = 'in_progress' AND x.expires_at > v_now;
      outcome := CASE WHEN FOUND THEN 'too_large' ELSE 'lease_lost' END;
    ELSE
      UPDATE ${t} AS x SET state = 'completed', token = NULL, lease_until = NULL, result = item.res,
        updated_at = v_now, expires_at = v_now + p_ttl_ms
      WHERE x.id = item.id AND x.token = item.tok AND x.state = 'in_progress' AND x.expires_at > v_now;
      outcome := CASE WHEN FOUND THEN 'completed' ELSE 'lease_lost' END;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$idem$;`
}

/**
 * settle(id, fingerprint, token, lease_ms, ttl_ms, result): transaction mode's claim that writes a
 * key with no record as completed with `result` (what a function that returns nothing stores),
 * answering outcome 'settled', so that such a function's transaction needs no completion. It is
 * begin's text with that one branch changed: a duplicate, a lapsed claim or an expired record
 * are decided exactly as begin does. Only inside the caller's transaction: no other session sees
 * the row before COMMIT (PostgreSQL has no dirty reads), and a rollback removes it. Then
 * resettle, for a function that returned a value. Functions, not statements sent as text: their
 * plans are prepared once per connection, where a statement's text is parsed and planned on every
 * call (a CTE UPDATE measured 160 to 250 µs more than the same UPDATE in a function, on this
 * project's test machine).
 */
export function settleFunctions(n: PostgresNames, nowMs: string): string {
  const t = n.qualifiedTable
  return `-- settle(id, fingerprint, token, lease_ms, ttl_ms, result): begin, writing an absent key as completed.
${beginFunction(n.settle, t, nowMs, 'settle')}
-- resettle(id, result): the function's value replaces the result of the record settle wrote in
-- this transaction (its row lock is ours until COMMIT). Retention stays counted from the claim,
-- as for an outcome settle wrote: expires_at is left alone, so the new row version needs no index
-- entries (a HOT update where the page has room). Raises idem_claim_not_owned when it matches no row
-- (the record's ttl ran out while the function ran), so that a COMMIT sent with it never runs.
CREATE OR REPLACE FUNCTION ${n.resettle}(p_id text, p_result bytea) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $idem$
DECLARE
  v_now bigint := ${nowMs};
BEGIN
  UPDATE ${t} AS x SET result = p_result, updated_at = v_now
  WHERE x.id = p_id AND x.state = 'completed' AND x.expires_at > v_now;
  IF NOT FOUND THEN
    RAISE EXCEPTION '${NOT_OWNED} %', p_id USING ERRCODE = '22P02';
  END IF;
  RETURN 1;
END
$idem$;
`
}

/** What the begin function writes for an absent key: a claim in progress, or (settle) the settled record. */
const absent = {
  begin: (
    t: string,
  ) => `INSERT INTO ${t} AS x (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
      VALUES (p_id, 'in_progress', p_fingerprint, p_token, v_now + p_lease_ms, 1, NULL, v_now, v_now,
              v_now + greatest(p_ttl_ms, p_lease_ms))
      ON CONFLICT (id) DO NOTHING;
      IF FOUND THEN
        outcome := 'acquired'; token := p_token; attempt := 1; recovered := false;
        lease_until := v_now + p_lease_ms; state := 'in_progress';
        RETURN NEXT; RETURN;
      END IF;`,
  settle: (
    t: string,
  ) => `INSERT INTO ${t} AS x (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
      VALUES (p_id, 'completed', p_fingerprint, NULL, NULL, 1, p_result, v_now, v_now, v_now + p_ttl_ms)
      ON CONFLICT (id) DO NOTHING;
      IF FOUND THEN
        outcome := 'settled'; token := p_token; attempt := 1; recovered := false;
        lease_until := v_now + p_lease_ms; state := 'completed';
        RETURN NEXT; RETURN;
      END IF;`,
}

/**
 * The begin function, or transaction mode's settle function: the same decisions, except that
 * settle (one more parameter, the result) writes an absent key as the completed record.
 */
function beginFunction(name: string, t: string, nowMs: string, kind: keyof typeof absent): string {
  const result = kind === 'settle' ? ', p_result bytea' : ''
  return `CREATE OR REPLACE FUNCTION ${name}(
  p_id text, p_fingerprint text, p_token text, p_lease_ms bigint, p_ttl_ms bigint${result}
) RETURNS TABLE (${BEGIN_COLUMNS})
LANGUAGE plpgsql VOLATILE AS $idem$
#variable_conflict use_column
DECLARE
  r ${t}%ROWTYPE;
  v_now bigint;
  v_attempt integer;
BEGIN
  -- Each pass takes a fresh snapshot. A pass ends in an answer unless its conditional write lost
  -- to a transaction that committed after the read; the next pass then sees that change.
  FOR i IN 1..100 LOOP
    SELECT * INTO r FROM ${t} AS x WHERE x.id = p_id;
    -- Read the clock after the row: every time in the row was written before this instant.
    v_now := ${nowMs};

    IF r.id IS NULL THEN
      -- Absent. A racer's uncommitted insert makes ON CONFLICT wait for it: if it commits, we
      -- insert nothing and the next pass reads its row (answering in_progress); if it rolls
      -- back, our insert goes through. Exactly one inserter wins.
      ${absent[kind](t)}
      CONTINUE;
    END IF;

    IF r.expires_at <= v_now THEN
      -- Expired counts as absent: replace it with a fresh record, attempt 1. The UPDATE re-checks
      -- the condition on the latest row version after any lock wait, so of several racers only
      -- the first replaces it; the others see a live record and loop. A row swept meanwhile
      -- matches nothing, and the next pass inserts.
      UPDATE ${t} AS x SET state = 'in_progress', fingerprint = p_fingerprint, token = p_token,
        lease_until = v_now + p_lease_ms, attempt = 1, result = NULL, created_at = v_now, updated_at = v_now,
        expires_at = v_now + greatest(p_ttl_ms, p_lease_ms)
      WHERE x.id = p_id AND x.expires_at <= v_now;
      IF FOUND THEN
        outcome := 'acquired'; token := p_token; attempt := 1; recovered := false;
        lease_until := v_now + p_lease_ms; state := 'in_progress';
        RETURN NEXT; RETURN;
      END IF;
      CONTINUE;
    END IF;

    -- Read-only answers: nothing is written.
    IF r.fingerprint <> p_fingerprint THEN
      outcome := 'mismatch'; state := r.state;
      RETURN NEXT; RETURN;
    END IF;
    IF r.state = 'completed' THEN
      -- For a completed record retry_after_ms carries the remaining retention (expiresInMs).
      outcome := 'completed'; result := r.result; attempt := r.attempt; completed_at := r.updated_at;
      retry_after_ms := r.expires_at - v_now; state := r.state;
      RETURN NEXT; RETURN;
    END IF;
    IF r.lease_until > v_now THEN
      outcome := 'in_progress'; lease_until := r.lease_until; retry_after_ms := r.lease_until - v_now;
      attempt := r.attempt; state := r.state;
      RETURN NEXT; RETURN;
    END IF;

    -- Lapsed lease: take over, compare-and-set on the token we read. Racers queue on the row
    -- lock; the first changes the token, so for every other the re-checked WHERE is false and
    -- its next pass reads the new, live lease (in_progress). An owner's extend or complete that
    -- committed first makes it false as well.
    UPDATE ${t} AS x SET token = p_token, attempt = x.attempt + 1, lease_until = v_now + p_lease_ms,
      updated_at = v_now, expires_at = greatest(x.expires_at, v_now + greatest(p_ttl_ms, p_lease_ms))
    WHERE x.id = p_id AND x.token = r.token AND x.state = 'in_progress'
      AND x.lease_until <= v_now AND x.expires_at > v_now
    RETURNING x.attempt INTO v_attempt;
    IF FOUND THEN
      outcome := 'acquired'; token := p_token; attempt := v_attempt; recovered := true;
      lease_until := v_now + p_lease_ms; state := 'in_progress';
      RETURN NEXT; RETURN;
    END IF;
  END LOOP;
  -- Unreachable in practice: each failed pass means another transaction changed this row.
  RAISE EXCEPTION 'idem: the record % kept changing during begin', p_id USING ERRCODE = '40001';
END
$idem$;

`
}

/**
 * complete(id, token, result, ttl_ms): the store's complete, with the statement it replaces
 * (postgres-sql.ts, `complete`) as its body: 1 when the claim was the token's and is now
 * completed, 0 otherwise. As a function its plan is prepared once per connection; the statement
 * is planned on every call (about 100 µs more a completion on this project's test machine).
 */
export function completeFunction(n: PostgresNames, nowMs: string): string {
  const t = n.qualifiedTable
  return `CREATE OR REPLACE FUNCTION ${n.complete}(p_id text, p_token text, p_result bytea, p_ttl_ms bigint)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $idem$
DECLARE
  v_now bigint := ${nowMs};
  v_done integer;
BEGIN
  UPDATE ${t} AS x SET state = 'completed', token = NULL, lease_until = NULL, result = p_result,
    updated_at = v_now, expires_at = v_now + p_ttl_ms
  WHERE x.id = p_id AND x.token = p_token AND x.state = 'in_progress' AND x.expires_at > v_now;
  GET DIAGNOSTICS v_done = ROW_COUNT;
  RETURN v_done;
END
$idem$;
`
}
