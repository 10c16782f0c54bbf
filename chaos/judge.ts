// The judge: from the ledger's rows (one per execution of a charge, never deduplicated) and the
// payments that were published, count what was applied, doubled and lost.

export interface LedgerRow {
  payment: string
  /** Idem's attempt of the execution (1, then +1 per takeover of a lapsed claim); 0 without Idem. */
  attempt: number
}

export interface Verdict {
  /** Payments charged at least once. */
  applied: number
  /** Extra charges: for each payment, its rows beyond the first. */
  doubled: number
  /**
   * Of `doubled`, the charges made by distinct claims of one key: a worker charged, then its claim
   * lapsed before it stored the outcome (killed, stalled) and a takeover charged again. That is
   * run() mode's documented at-least-once window for an effect outside the store; transaction mode
   * has no such window. The rest of `doubled` ran twice under one claim generation: Idem failed.
   */
  takeoverDoubles: number
  /** Payments published and never charged. */
  lost: number
  /** Charges of payments that were never published (a harness bug). */
  unknown: number
}

export function judge(published: readonly string[], rows: readonly LedgerRow[]): Verdict {
  const attempts = new Map<string, number[]>()
  for (const row of rows) {
    const list = attempts.get(row.payment)
    if (list === undefined) attempts.set(row.payment, [row.attempt])
    else list.push(row.attempt)
  }
  const expected = new Set(published)
  let applied = 0
  let doubled = 0
  let takeoverDoubles = 0
  let lost = 0
  for (const payment of expected) {
    const list = attempts.get(payment)
    if (list === undefined) {
      lost++
      continue
    }
    applied++
    doubled += list.length - 1
    // Distinct positive attempts are distinct claims; a repeated attempt number (or 0) is not.
    const distinct = new Set(list.filter((a) => a > 0))
    takeoverDoubles += Math.max(0, distinct.size - 1)
  }
  let unknown = 0
  for (const [payment, list] of attempts) if (!expected.has(payment)) unknown += list.length
  return { applied, doubled, takeoverDoubles, lost, unknown }
}
