// What every section of bench/stores.ts shares: its settings (full or --quick), the names it may
// create on the shared servers, the goals it reports, and the cleanups it owes.

import os from 'node:os'

export interface Settings {
  quick: boolean
  warmupSeconds: number
  sampleScale: number
  /** Concurrency 1: rounds of `seconds` per workload. */
  c1: { rounds: number; seconds: number }
  /** Concurrency `concurrency` (64). */
  c64: { rounds: number; seconds: number }
  concurrency: number
  /** Connections of the pg Pool and of the mysql2 pool (shared by the store and its floor). */
  poolSize: number
  /** Completed keys that duplicates cycle through, per store. */
  replayKeys: number
  /** Items per beginMany/completeMany in section batches. */
  batchSize: number
  /** Records written to measure bytes per record. */
  memoryRecords: number
  /** Retained records of the small and the large store in section scale. */
  scale: { small: number; large: number; rounds: number; seconds: number }
}

export const FULL: Settings = {
  quick: false,
  warmupSeconds: 0.3,
  sampleScale: 1,
  c1: { rounds: 5, seconds: 0.6 },
  c64: { rounds: 5, seconds: 0.6 },
  concurrency: 64,
  poolSize: 16,
  replayKeys: 4096,
  batchSize: 100,
  memoryRecords: 100_000,
  scale: { small: 10_000, large: 1_000_000, rounds: 5, seconds: 1 },
}

export const QUICK: Settings = {
  quick: true,
  warmupSeconds: 0.05,
  sampleScale: 0.25,
  c1: { rounds: 1, seconds: 0.1 },
  c64: { rounds: 1, seconds: 0.1 },
  concurrency: 64,
  poolSize: 16,
  replayKeys: 256,
  batchSize: 100,
  memoryRecords: 5_000,
  scale: { small: 1_000, large: 20_000, rounds: 1, seconds: 0.1 },
}

/** The shared local servers (the same variables as the test suites). */
export const SERVERS = {
  redis: { host: '127.0.0.1', port: Number(process.env.IDEM_REDIS_PORT ?? 6379) },
  pgUrl: process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysqlUrl: process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
} as const

/**
 * Retention on the shared Redis: short, so that the keys of a run that crashes before its cleanup
 * expire by themselves. Its value changes no cost (a key's expiry is one integer either way).
 */
export const SHARED_TTL_MS = 600_000

export interface Goal {
  text: string
  value: string
  pass: boolean
}

export class BenchRun {
  readonly settings: Settings
  /** For SQL names: `idem_bench_<pid>` (a schema in PostgreSQL, a table prefix in MariaDB). */
  readonly sqlName = `idem_bench_${process.pid}`
  /** Every key this run writes to the shared Redis starts with it. */
  readonly redisPrefix = `idem-bench-${process.pid}`
  readonly goals: Goal[] = []
  readonly #cleanups: { what: string; fn: () => Promise<unknown> }[] = []

  constructor(settings: Settings) {
    this.settings = settings
  }

  goal(text: string, value: string, pass: boolean): void {
    this.goals.push({ text, value, pass })
  }

  /** Run `fn` at cleanup (last registered, first run), even when the section failed. */
  onCleanup(what: string, fn: () => Promise<unknown>): void {
    this.#cleanups.push({ what, fn })
  }

  async cleanup(): Promise<void> {
    while (this.#cleanups.length > 0) {
      const { what, fn } = this.#cleanups.pop() as { what: string; fn: () => Promise<unknown> }
      try {
        await fn()
      } catch (error) {
        console.error(`cleanup failed (${what}): ${(error as Error).message}`)
      }
    }
  }
}

export function loadLine(when: string): string {
  const [one, five, fifteen] = os.loadavg().map((l) => l.toFixed(2))
  return `load average ${when}: ${one}, ${five}, ${fifteen} (1, 5, 15 min; ${os.availableParallelism()} cores)`
}
