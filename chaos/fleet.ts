// The workers of one combination: N consumer processes, each started again as soon as it dies,
// which the run SIGKILLs and SIGSTOPs; their counters, summed over every process that ran.

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type WorkerConfig, type WorkerCounters, type WorkerMessage, ZERO_COUNTERS } from './worker-config.js'

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url))
const SKEW = fileURLToPath(new URL('./skew.ts', import.meta.url))
/** Where tsx finds the tsconfig that maps 'idem' to the sources. */
const REPO = fileURLToPath(new URL('..', import.meta.url))

const fleets = new Set<Fleet>()

/** SIGKILL every worker of every fleet still running: on exit, also after a failure. */
export function killAllWorkers(): void {
  for (const fleet of fleets) fleet.killAll()
}

export interface FleetOptions {
  size: number
  config: WorkerConfig
  /** Clock skew per worker index, in ms (0 or missing: the machine's clock). */
  skewMs?: readonly number[]
}

interface Slot {
  child: ChildProcess
  ready: boolean
  stopped: boolean
  counters: WorkerCounters
  stderr: string
  exited: Promise<void>
  expectedDeath: boolean
}

export class Fleet {
  /** Processes that died unexpectedly (not killed by the run), with their stderr. */
  readonly errors: string[] = []
  /**
   * Processes that died before they were consuming: a connect that met a fault (a cut, a
   * blackhole, a server restarting). Started again, as a supervisor would; not an error.
   */
  startupFailures = 0
  readonly #options: FleetOptions
  readonly #slots: Slot[] = []
  readonly #gone: WorkerCounters = { ...ZERO_COUNTERS }
  #stopping = false

  constructor(options: FleetOptions) {
    this.#options = options
    fleets.add(this)
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.#options.size; i++) this.#slots.push(this.#spawn(i))
    await Promise.all(this.#slots.map((_, i) => this.#whenReady(i)))
  }

  async #whenReady(index: number): Promise<void> {
    const deadline = Date.now() + 60_000
    while (!this.#slots[index]?.ready) {
      if (Date.now() > deadline) throw new Error(`worker ${index} did not start: ${this.#slots[index]?.stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  #spawn(index: number): Slot {
    const skew = this.#options.skewMs?.[index] ?? 0
    const args = ['--import', 'tsx', ...(skew === 0 ? [] : ['--import', SKEW]), WORKER]
    const child = spawn(process.execPath, args, {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: {
        ...process.env,
        CHAOS_WORKER: JSON.stringify(this.#options.config),
        // A restarted worker takes its slot's index: MQTT resumes its session by a stable client id.
        CHAOS_WORKER_INDEX: String(index),
        CHAOS_SKEW_MS: String(skew),
      },
    })
    const slot: Slot = {
      child,
      ready: false,
      stopped: false,
      counters: { ...ZERO_COUNTERS },
      stderr: '',
      expectedDeath: false,
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    }
    child.stderr?.on('data', (chunk: Buffer) => {
      slot.stderr = (slot.stderr + chunk).slice(-4000)
    })
    child.on('message', (m: WorkerMessage) => {
      if ('ready' in m) slot.ready = true
      else slot.counters = m.counters
    })
    child.once('exit', (code, signal) => {
      for (const k of Object.keys(this.#gone) as (keyof WorkerCounters)[]) this.#gone[k] += slot.counters[k]
      slot.counters = { ...ZERO_COUNTERS }
      const graceful = this.#stopping && (code === 0 || (signal === 'SIGTERM' && !slot.ready))
      if (!graceful && !slot.expectedDeath) {
        if (slot.ready) this.errors.push(`worker exit ${signal ?? code}: ${slot.stderr.trim()}`)
        else this.startupFailures++
      }
      if (!this.#stopping && this.#slots[index] === slot) this.#slots[index] = this.#spawn(index)
    })
    return slot
  }

  #pick(random: () => number, filter: (slot: Slot) => boolean): Slot | undefined {
    const candidates = this.#slots.filter((s) => s.ready && !s.expectedDeath && filter(s))
    return candidates[Math.floor(random() * candidates.length)]
  }

  /** SIGKILL a running worker (it is started again at once). */
  kill(random: () => number): boolean {
    const victim = this.#pick(random, () => true)
    if (victim === undefined) return false
    victim.expectedDeath = true
    if (victim.stopped) victim.child.kill('SIGCONT')
    victim.child.kill('SIGKILL')
    return true
  }

  /** SIGSTOP a running worker for `ms` (longer than the lease: its claims lapse), then SIGCONT. */
  stall(random: () => number, ms: number): boolean {
    const victim = this.#pick(random, (s) => !s.stopped)
    if (victim === undefined) return false
    victim.stopped = true
    victim.child.kill('SIGSTOP')
    setTimeout(() => this.#resume(victim), ms)
    return true
  }

  #resume(slot: Slot): void {
    if (!slot.stopped) return
    slot.stopped = false
    slot.child.kill('SIGCONT')
  }

  /** SIGCONT every stalled worker now. */
  resumeAll(): void {
    for (const slot of this.#slots) this.#resume(slot)
  }

  totals(): WorkerCounters {
    const sum = { ...this.#gone }
    for (const slot of this.#slots)
      for (const k of Object.keys(sum) as (keyof WorkerCounters)[]) sum[k] += slot.counters[k]
    return sum
  }

  /** SIGTERM every worker (each closes its consumer), SIGKILL stragglers. */
  async stop(): Promise<void> {
    this.#stopping = true
    this.resumeAll()
    const slots = [...this.#slots]
    for (const slot of slots) slot.child.kill('SIGTERM')
    const timer = setTimeout(() => {
      for (const slot of slots) slot.child.kill('SIGKILL')
    }, 15_000)
    await Promise.all(slots.map((s) => s.exited))
    clearTimeout(timer)
    this.#slots.length = 0
    fleets.delete(this)
  }

  /** Last resort on exit: SIGKILL by pid whatever still runs. */
  killAll(): void {
    for (const slot of this.#slots) {
      slot.child.kill('SIGCONT')
      slot.child.kill('SIGKILL')
    }
  }
}
