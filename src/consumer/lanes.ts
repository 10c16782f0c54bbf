// Bounded concurrency with per-key order: jobs that share a lane run one at a time in arrival
// order; the heads of different lanes run in parallel, at most `limit` at once, first come first
// served.

export interface Job {
  readonly lane: string
  /** Runs the job; the returned promise never rejects. Not needed when the lanes are given a `start`. */
  start?(): Promise<void>
}

export class Lanes<J extends Job = Job> {
  readonly #limit: number
  readonly #start: ((job: J) => void) | undefined
  /**
   * Per lane, its jobs in arrival order; the first is running or waiting for a slot. A lane of one
   * job (the usual case: the lane is the message key) holds the job itself, not an array.
   */
  readonly #lanes = new Map<string, J | J[]>()
  /** Heads of lanes waiting for a slot, in the order they became heads. */
  readonly #ready: J[] = []
  readonly #started = new Set<J>()
  #running = 0

  /**
   * Without `start`, a job runs with its own `start()` and ends when that promise settles. With
   * it, `start(job)` runs the job, and whoever runs it calls `finish(job)` once when it ended
   * (no promise and callback per job).
   */
  constructor(limit: number, start?: (job: J) => void) {
    this.#limit = limit
    this.#start = start
  }

  /** Jobs started and not finished. */
  get running(): number {
    return this.#running
  }

  /** True when `lane` has a job queued or running. */
  busy(lane: string): boolean {
    return this.#lanes.has(lane)
  }

  push(job: J): void {
    const queue = this.#lanes.get(job.lane)
    if (queue === undefined) {
      this.#lanes.set(job.lane, job)
      this.#ready.push(job)
      this.#pump()
    } else if (Array.isArray(queue)) {
      queue.push(job)
    } else {
      this.#lanes.set(job.lane, [queue, job])
    }
  }

  /** Remove every job that has not started and return them, lane by lane (for shutdown). */
  drain(): J[] {
    const removed: J[] = []
    this.#ready.length = 0
    for (const [lane, entry] of this.#lanes) {
      const queue = Array.isArray(entry) ? entry : [entry]
      const head = queue[0] as J
      const keep = this.#started.has(head) ? [head] : []
      for (const job of queue) if (!keep.includes(job)) removed.push(job)
      if (keep.length === 0) this.#lanes.delete(lane)
      else this.#lanes.set(lane, keep)
    }
    return removed
  }

  #pump(): void {
    while (this.#running < this.#limit && this.#ready.length > 0) {
      const job = this.#ready.shift() as J
      this.#running++
      this.#started.add(job)
      if (this.#start !== undefined) this.#start(job)
      else void (job.start as () => Promise<void>)().then(() => this.finish(job))
    }
  }

  /** A started job ended: its lane's next job may run, and its slot is free. Once per started job. */
  finish(job: J): void {
    this.#running--
    this.#started.delete(job)
    const queue = this.#lanes.get(job.lane)
    if (queue === job) {
      this.#lanes.delete(job.lane)
    } else if (Array.isArray(queue) && queue[0] === job) {
      queue.shift()
      const next = queue[0]
      if (next === undefined) this.#lanes.delete(job.lane)
      else this.#ready.push(next)
    }
    this.#pump()
  }
}
