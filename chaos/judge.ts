// The judge: from the ledger's rows (one per execution of a charge, never deduplicated) and the
// payments that were published, count what was applied, doubled and lost.

export interface LedgerRow {
  payment: string
  /** Idem's attempt of the execution (1, then +1 per takeover of a lapsed claim); 0 without Idem. */
  attempt: number
  /** When the row was written, in ms since the epoch, by the ledger database's clock. */
  chargedAt?: number
}

/**
 * A restart of the store's Redis that lost everything (the `wipe` fault): killed at `killedAt`,
 * accepting connections again, empty, at `upAt` (ms since the epoch, the run's clock: the same
 * machine as the ledger's database).
 */
export interface Wipe {
  killedAt: number
  upAt: number
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
   * has no such window. The rest of `doubled` (but `wipeDoubles`) ran twice under one claim
   * generation: Idem failed.
   */
  takeoverDoubles: number
  /**
   * Of `doubled`, the charges made after a wipe of a payment first charged before it: the store
   * forgot the record, so the next copy of the message was a new key to it. Not Idem's failure:
   * the store's durability is part of the guarantee.
   */
  wipeDoubles: number
  /** Payments published and never charged. */
  lost: number
  /** Charges of payments that were never published (a harness bug). */
  unknown: number
}

/**
 * The store's life a charge belongs to: how many wipes had the store back up, empty, before it.
 * A charge between a wipe's kill and its return belongs to the life before: its claim could only
 * have been made before the kill. A claim made before a kill whose charge lands after the return
 * (its reply held up longer than the restart) is counted after; if a charge after the wipe then
 * doubles it under the same attempt number, the run reports a double under one claim: it errs
 * towards failing, never towards hiding.
 */
function storeLife(row: LedgerRow, wipes: readonly Wipe[]): number {
  if (row.chargedAt === undefined) return 0
  let life = 0
  for (const wipe of wipes) if (wipe.upAt <= row.chargedAt) life++
  return life
}

export function judge(published: readonly string[], rows: readonly LedgerRow[], wipes: readonly Wipe[] = []): Verdict {
  const byPayment = new Map<string, LedgerRow[]>()
  for (const row of rows) {
    const list = byPayment.get(row.payment)
    if (list === undefined) byPayment.set(row.payment, [row])
    else list.push(row)
  }
  const expected = new Set(published)
  let applied = 0
  let doubled = 0
  let takeoverDoubles = 0
  let wipeDoubles = 0
  let lost = 0
  for (const payment of expected) {
    const list = byPayment.get(payment)
    if (list === undefined) {
      lost++
      continue
    }
    applied++
    doubled += list.length - 1
    // Per life of the store: the first charge of each life after the first is a wipe double; within
    // one life, distinct positive attempts are distinct claims, a repeated attempt number (or 0) is not.
    const attemptsByLife = new Map<number, Set<number>>()
    for (const row of list) {
      const life = storeLife(row, wipes)
      const attempts = attemptsByLife.get(life) ?? new Set<number>()
      attemptsByLife.set(life, attempts)
      if (row.attempt > 0) attempts.add(row.attempt)
    }
    wipeDoubles += attemptsByLife.size - 1
    for (const attempts of attemptsByLife.values()) takeoverDoubles += Math.max(0, attempts.size - 1)
  }
  let unknown = 0
  for (const [payment, list] of byPayment) if (!expected.has(payment)) unknown += list.length
  return { applied, doubled, takeoverDoubles, wipeDoubles, lost, unknown }
}
