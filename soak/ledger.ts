// The soak run's bookkeeping: how many keys, requests and executions each traffic source made,
// which key ran its handler twice, every error, and how many records each store should hold.
// Everything here is bounded, so that the harness itself cannot be the growth the run looks for.

/** Errors of the run: every one fails it; the first few are printed. */
export class Errors {
  count = 0
  readonly first: string[] = []

  add(where: string, error: unknown): void {
    this.count++
    if (this.first.length < 10) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      this.first.push(`${where}: ${message}`)
    }
  }
}

/**
 * Executions per key, for one traffic source. A key is remembered for `retainMs` after it was
 * first sent, longer than any duplicate of it is sent (the duplicate window) plus the time one
 * may spend in flight; the totals (every key executed exactly once overall) cover the rest.
 */
export class Ledger {
  /** Distinct keys sent. */
  keys = 0
  /** Requests or messages sent, duplicates included. */
  sent = 0
  /** Answered requests or settled messages. */
  done = 0
  /** Handler executions. */
  executions = 0
  /** Duplicates answered with the stored outcome. */
  replayed = 0
  /** Executions of a key that had already executed. */
  doubleExecutions = 0
  readonly doubled: string[] = []
  /** Deliveries handed back because their key was in progress (they come again and settle later). */
  retriedInProgress = 0
  /** Operations the pacer skipped because too many were in flight. */
  shed = 0

  readonly #counts = new Map<string, number>()
  readonly #order: { key: string; at: number }[] = []
  #head = 0

  /** `onExecution` is told of every execution: each one follows the claim that created its record. */
  constructor(
    readonly name: string,
    readonly retainMs: number,
    readonly onExecution: () => void,
  ) {}

  get duplicates(): number {
    return this.sent - this.keys
  }

  get inFlight(): number {
    return this.sent - this.done
  }

  newKey(key: string, now: number): void {
    this.keys++
    this.#counts.set(key, 0)
    this.#order.push({ key, at: now })
    this.#evict(now)
  }

  executed(key: string): void {
    this.executions++
    this.onExecution()
    const count = (this.#counts.get(key) ?? 0) + 1
    if (this.#counts.has(key)) this.#counts.set(key, count)
    if (count > 1) {
      this.doubleExecutions++
      if (this.doubled.length < 10) this.doubled.push(`${key} ran ${count} times`)
    }
  }

  #evict(now: number): void {
    while (this.#head < this.#order.length && now - (this.#order[this.#head] as { at: number }).at > this.retainMs) {
      this.#counts.delete((this.#order[this.#head] as { key: string }).key)
      this.#head++
    }
    // Compact now and then, so the array does not keep every entry ever pushed.
    if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order.splice(0, this.#head)
      this.#head = 0
    }
  }
}

/**
 * New records per second of one store, kept for the last `spanS` seconds: the store may hold at
 * most the records created within its ttl plus its expiry lag, and this says how many that is. A
 * record is counted when its handler runs, just after the claim that created it: counting when a
 * message is published would miss that a consumer running behind creates its records later.
 */
export class CreationRate {
  readonly #buckets: number[]
  readonly #started = performance.now()
  #last = 0

  constructor(readonly spanS: number) {
    this.#buckets = new Array(spanS + 1).fill(0)
  }

  add(): void {
    const second = this.#advance()
    this.#buckets[second % this.#buckets.length] = (this.#buckets[second % this.#buckets.length] as number) + 1
  }

  /** Records created within the last `seconds` (whole seconds, the current one included). */
  within(seconds: number): number {
    const now = this.#advance()
    let total = 0
    for (let s = Math.max(0, now - Math.min(seconds, this.spanS)); s <= now; s++)
      total += this.#buckets[s % this.#buckets.length] as number
    return total
  }

  #advance(): number {
    const now = Math.floor((performance.now() - this.#started) / 1000)
    for (let s = this.#last + 1; s <= now && s <= this.#last + this.#buckets.length; s++)
      this.#buckets[s % this.#buckets.length] = 0
    this.#last = Math.max(this.#last, now)
    return now
  }
}
