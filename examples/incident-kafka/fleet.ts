// The consumer group's processes: N members, each restarted as soon as it dies, one more member
// that joins and later leaves (two rebalances on purpose), a chaos hook that SIGKILLs a member that
// is handling messages, and the counters they report over IPC.

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ConsumerReport } from './consumer-process.js'

const CONSUMER = fileURLToPath(new URL('./consumer-process.ts', import.meta.url))
/** Where tsx finds the tsconfig that maps 'idem' to the sources. */
const REPO = fileURLToPath(new URL('../..', import.meta.url))

export interface FleetOptions {
  size: number
  broker: string
  topic: string
  group: string
  pgUrl: string
  schema: string
  concurrency: number
  /** Per payment: the process SIGKILLs itself once the effect is written, before its transaction commits. */
  crashAfterEffect: number
  /** Per record an offset commit would cover: the process SIGKILLs itself instead of committing. */
  crashBeforeCommit: number
  /** Consumers without Idem, as in the incident (for comparison). */
  naive: boolean
}

export interface FleetFaults {
  /** Processes killed by the chaos loop while they were working through messages. */
  chaosKills: number
  crashesAfterEffect: number
  crashesBeforeCommit: number
  /** Members that joined the running group, and members that left it gracefully (each a rebalance). */
  joins: number
  leaves: number
  /** Processes that died any other way (a bug): the scenario fails if this is not 0. */
  unexpectedExits: number
  /** Processes started, first ones, the extra member and replacements. */
  starts: number
}

interface Slot {
  child: ChildProcess
  ready: boolean
  report: ConsumerReport | undefined
  crash: 'after-effect' | 'before-commit' | undefined
  killedByChaos: boolean
  /** Told to leave the group (SIGTERM): not replaced. */
  leaving: boolean
  /** When its counters last moved: it is working through messages. */
  progressAt: number
  exited: Promise<void>
  stderr: string
}

const ZERO: ConsumerReport = {
  executed: 0,
  replayed: 0,
  retried: 0,
  deadLettered: 0,
  recoveredErrors: 0,
  generation: 0,
  inFlight: 0,
}
/** Counters that add up over processes (generation is a maximum, inFlight a snapshot). */
const SUMMED = ['executed', 'replayed', 'retried', 'deadLettered', 'recoveredErrors'] as const

export class ConsumerFleet {
  readonly faults: FleetFaults = {
    chaosKills: 0,
    crashesAfterEffect: 0,
    crashesBeforeCommit: 0,
    joins: 0,
    leaves: 0,
    unexpectedExits: 0,
    starts: 0,
  }
  /** Stderr of processes that died unexpectedly. */
  readonly errors: string[] = []
  readonly #options: FleetOptions
  /** Indexed by member; `undefined` once a member left for good. */
  readonly #slots: (Slot | undefined)[] = []
  /** Last reports of processes that are gone. */
  readonly #gone: ConsumerReport = { ...ZERO }
  #stopping = false

  constructor(options: FleetOptions) {
    this.#options = options
  }

  /** Start every process and wait until each is consuming. */
  async start(): Promise<void> {
    for (let i = 0; i < this.#options.size; i++) this.#slots.push(this.#spawn(i))
    await Promise.all(this.#slots.map((_, i) => this.#whenReady(i)))
  }

  /** One more member joins the group (a rebalance); resolves with its index once it consumes. */
  async join(): Promise<number> {
    const index = this.#slots.length
    this.#slots.push(this.#spawn(index))
    this.faults.joins++
    await this.#whenReady(index)
    return index
  }

  /** Member `index` leaves the group gracefully (SIGTERM: it closes its consumer; a rebalance) and is not replaced. */
  async leave(index: number): Promise<void> {
    const slot = this.#slots[index]
    if (slot === undefined) return
    slot.leaving = true
    slot.child.kill('SIGTERM')
    await slot.exited
    this.faults.leaves++
  }

  async #whenReady(index: number): Promise<void> {
    const deadline = Date.now() + 60_000
    while (!this.#slots[index]?.ready) {
      if (this.#stopping) return
      if (Date.now() > deadline) throw new Error(`consumer ${index} did not start: ${this.#slots[index]?.stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  #spawn(index: number): Slot {
    const o = this.#options
    const args = ['--import', 'tsx', CONSUMER, '--broker', o.broker, '--topic', o.topic, '--group', o.group]
    args.push('--pg', o.pgUrl, '--schema', o.schema)
    args.push('--name', `billing-${index}`, '--concurrency', String(o.concurrency))
    args.push('--crash-after-effect', String(o.crashAfterEffect), '--crash-before-commit', String(o.crashBeforeCommit))
    if (o.naive) args.push('--naive')
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.faults.starts++
    const slot: Slot = {
      child,
      ready: false,
      report: undefined,
      crash: undefined,
      killedByChaos: false,
      leaving: false,
      progressAt: 0,
      stderr: '',
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    }
    child.stderr?.on('data', (chunk: Buffer) => {
      slot.stderr = (slot.stderr + chunk).slice(-4000)
    })
    child.on('message', (m: { ready?: boolean; report?: ConsumerReport; crash?: Slot['crash'] }) => {
      if (m.ready) slot.ready = true
      if (m.report) {
        const done = (r: ConsumerReport | undefined) => (r === undefined ? 0 : r.executed + r.replayed + r.retried)
        if (done(m.report) > done(slot.report)) slot.progressAt = Date.now()
        slot.report = m.report
      }
      if (m.crash) slot.crash = m.crash
    })
    child.once('exit', (code, signal) => {
      this.#settle(slot, code, signal)
      if (this.#slots[index] !== slot) return
      if (slot.leaving) this.#slots[index] = undefined
      else if (!this.#stopping) this.#slots[index] = this.#spawn(index)
    })
    return slot
  }

  #settle(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const report = slot.report ?? ZERO
    for (const name of SUMMED) this.#gone[name] += report[name]
    this.#gone.generation = Math.max(this.#gone.generation, report.generation)
    const stopped = this.#stopping || slot.leaving
    // Stopped gracefully, or stopped while still loading (before it could install its SIGTERM handler).
    if (stopped && (code === 0 || (signal === 'SIGTERM' && !slot.ready))) return
    if (signal === 'SIGKILL' && slot.crash === 'after-effect') this.faults.crashesAfterEffect++
    else if (signal === 'SIGKILL' && slot.crash === 'before-commit') this.faults.crashesBeforeCommit++
    else if (signal === 'SIGKILL' && slot.killedByChaos) this.faults.chaosKills++
    else {
      this.faults.unexpectedExits++
      this.errors.push(`exit ${signal ?? code}: ${slot.stderr.trim()}`)
    }
  }

  /**
   * SIGKILL one member that is working through messages (its counters moved in the last half
   * second): it dies with records fetched, some handled, their offsets not yet committed.
   */
  killOneBusy(pick: (n: number) => number): boolean {
    const now = Date.now()
    const busy = this.#live().filter((s) => s.ready && !s.leaving && !s.killedByChaos && now - s.progressAt < 500)
    const victim = busy[pick(busy.length)]
    if (victim === undefined) return false
    victim.killedByChaos = true
    victim.child.kill('SIGKILL')
    return true
  }

  #live(): Slot[] {
    return this.#slots.filter((s): s is Slot => s !== undefined)
  }

  /** Messages the live processes hold (as last reported). */
  inFlight(): number {
    return this.#live().reduce((sum, s) => sum + (s.report?.inFlight ?? 0), 0)
  }

  /** Counters over every process, live or gone. */
  totals(): ConsumerReport {
    const sum = { ...this.#gone, inFlight: this.inFlight() }
    for (const slot of this.#live()) {
      const report = slot.report ?? ZERO
      for (const name of SUMMED) sum[name] += report[name]
      sum.generation = Math.max(sum.generation, report.generation)
    }
    return sum
  }

  /** SIGTERM every process (each closes its consumer gracefully) and wait for them; SIGKILL stragglers. */
  async stop(): Promise<void> {
    this.#stopping = true
    const slots = this.#live()
    for (const slot of slots) slot.child.kill('SIGTERM')
    const timer = setTimeout(() => {
      for (const slot of slots) slot.child.kill('SIGKILL')
    }, 40_000)
    await Promise.all(slots.map((s) => s.exited))
    clearTimeout(timer)
    this.#slots.length = 0
  }
}
