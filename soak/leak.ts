// The `--leak` self-test: a deliberately broken handler, to show that the soak verdict fails on
// the growth it claims to catch. Never used in a real run.
//
// Per HTTP request that runs the handler it keeps about 2 KiB of heap forever, and every 50th
// such request it starts an interval that nobody clears (a forgotten timer: one more 'Timeout'
// handle each time).

export type LeakKind = 'memory' | 'handles'

export class Leak {
  readonly #retained: number[][] = []
  readonly #timers: NodeJS.Timeout[] = []
  #requests = 0

  constructor(readonly kinds: ReadonlySet<LeakKind>) {}

  onRequest(): void {
    this.#requests++
    // 256 doubles: a 2 KiB backing store on the JS heap (a Buffer would sit outside it).
    if (this.kinds.has('memory')) this.#retained.push(new Array(256).fill(this.#requests + 0.5))
    if (this.kinds.has('handles') && this.#requests % 50 === 0) this.#timers.push(setInterval(() => {}, 60_000))
  }

  /** Clears the timers, so that the process can end. */
  stop(): void {
    for (const timer of this.#timers) clearInterval(timer)
  }
}
