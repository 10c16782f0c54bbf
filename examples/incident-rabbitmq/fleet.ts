// The consumer fleet: N consumer processes on one queue, each restarted as soon as it dies, a
// chaos hook that SIGKILLs one that is handling messages, and the counters they report over IPC.

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ConsumerReport } from './consumer-process.js'

const CONSUMER = fileURLToPath(new URL('./consumer-process.ts', import.meta.url))
/** Where tsx finds the tsconfig that maps 'idem' to the sources. */
const REPO = fileURLToPath(new URL('../..', import.meta.url))

export interface FleetOptions {
  size: number
  url: string
  db: string
  queue: string
  prefetch: number
  concurrency: number
  /** Per execution: the process SIGKILLs itself with the writes made, before the commit. */
  crashInTransaction: number
  /** Per ack: the process SIGKILLs itself after the commit, instead of acking. */
  crashBeforeAck: number
  /** Consumers without Idem, as in the incident (for comparison). */
  naive: boolean
}

export interface FleetFaults {
  /** Processes killed by the chaos loop while they had messages in flight. */
  chaosKills: number
  crashesInTransaction: number
  crashesBeforeAck: number
  /** Processes that died any other way (a bug): the scenario fails if this is not 0. */
  unexpectedExits: number
  /** Processes started, first ones and replacements. */
  starts: number
}

interface Slot {
  child: ChildProcess
  ready: boolean
  report: ConsumerReport | undefined
  crash: 'in-transaction' | 'before-ack' | undefined
  killedByChaos: boolean
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
  brokerErrors: 0,
  redeliveries: 0,
  inFlight: 0,
}

export class ConsumerFleet {
  readonly faults: FleetFaults = {
    chaosKills: 0,
    crashesInTransaction: 0,
    crashesBeforeAck: 0,
    unexpectedExits: 0,
    starts: 0,
  }
  /** Stderr of processes that died unexpectedly. */
  readonly errors: string[] = []
  readonly #options: FleetOptions
  readonly #slots: Slot[] = []
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

  async #whenReady(index: number): Promise<void> {
    const deadline = Date.now() + 60_000
    while (!this.#slots[index]?.ready) {
      if (Date.now() > deadline) throw new Error(`consumer ${index} did not start: ${this.#slots[index]?.stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  #spawn(index: number): Slot {
    const o = this.#options
    const args = ['--import', 'tsx', CONSUMER, '--url', o.url, '--db', o.db, '--queue', o.queue]
    args.push('--prefetch', String(o.prefetch), '--concurrency', String(o.concurrency))
    args.push('--crash-in-transaction', String(o.crashInTransaction), '--crash-before-ack', String(o.crashBeforeAck))
    if (o.naive) args.push('--naive')
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.faults.starts++
    const slot: Slot = {
      child,
      ready: false,
      report: undefined,
      crash: undefined,
      killedByChaos: false,
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
      if (!this.#stopping && this.#slots[index] === slot) this.#slots[index] = this.#spawn(index)
    })
    return slot
  }

  #settle(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    for (const [name, n] of Object.entries(slot.report ?? ZERO) as [keyof ConsumerReport, number][]) {
      if (name !== 'inFlight') this.#gone[name] += n
    }
    // Stopped gracefully, or stopped while still loading (before it could install its SIGTERM handler).
    if (this.#stopping && (code === 0 || (signal === 'SIGTERM' && !slot.ready))) return
    if (signal === 'SIGKILL' && slot.crash === 'in-transaction') this.faults.crashesInTransaction++
    else if (signal === 'SIGKILL' && slot.crash === 'before-ack') this.faults.crashesBeforeAck++
    else if (signal === 'SIGKILL' && slot.killedByChaos) this.faults.chaosKills++
    else {
      this.faults.unexpectedExits++
      this.errors.push(`exit ${signal ?? code}: ${slot.stderr.trim()}`)
    }
  }

  /**
   * SIGKILL one process that is working through messages (its counters moved in the last half
   * second). Handlers run in bursts between two reports, so a process's in-flight count sampled
   * by a timer reads 0: progress is the signal that it is busy.
   */
  killOneBusy(pick: (n: number) => number): boolean {
    const now = Date.now()
    const busy = this.#slots.filter((s) => s.ready && !s.killedByChaos && now - s.progressAt < 500)
    const victim = busy[pick(busy.length)]
    if (victim === undefined) return false
    victim.killedByChaos = true
    victim.child.kill('SIGKILL')
    return true
  }

  /** Messages the live processes hold (as last reported). */
  inFlight(): number {
    return this.#slots.reduce((sum, s) => sum + (s.report?.inFlight ?? 0), 0)
  }

  /** Counters over every process, live or gone. */
  totals(): ConsumerReport {
    const sum = { ...this.#gone }
    for (const slot of this.#slots) {
      for (const [name, n] of Object.entries(slot.report ?? ZERO) as [keyof ConsumerReport, number][]) {
        if (name !== 'inFlight') sum[name] += n
      }
    }
    return sum
  }

  /** SIGTERM every process (each closes its consumer gracefully) and wait for them; SIGKILL stragglers. */
  async stop(): Promise<void> {
    this.#stopping = true
    const slots = [...this.#slots]
    for (const slot of slots) slot.child.kill('SIGTERM')
    const timer = setTimeout(() => {
      for (const slot of slots) slot.child.kill('SIGKILL')
    }, 40_000)
    await Promise.all(slots.map((s) => s.exited))
    clearTimeout(timer)
    this.#slots.length = 0
  }
}
