import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { SqliteStore } from './sqlite-store.js'

const RACERS = 5
const BEGINS_PER_ROUND = 10
const ROUNDS = 20

interface RacerReport {
  begins: Record<string, number>[]
  runs: string[]
}

describe('SqliteStore across threads sharing one database file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idem-racers-'))
  const file = join(dir, 'racers.db')
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it(`lets exactly one of ${RACERS * BEGINS_PER_ROUND} racers in ${RACERS} threads acquire each key, and runs each effect once`, async () => {
    const setup = new Database(file)
    new SqliteStore({ client: setup }).ensureSchema()
    setup.exec('CREATE TABLE effects (id TEXT PRIMARY KEY, n INTEGER NOT NULL)')
    const seed = setup.prepare('INSERT INTO effects (id, n) VALUES (?, 0)')
    for (let round = 0; round < ROUNDS; round++) seed.run(`run-race-${round}`)

    const barrier = new SharedArrayBuffer(4)
    const reports = await Promise.all(
      Array.from(
        { length: RACERS },
        () =>
          new Promise<RacerReport>((resolve, reject) => {
            // The racer is TypeScript: register tsx's loader in the thread, then import it.
            const entry = new URL('../../../test/support/stores/sqlite/sqlite-racer.worker.ts', import.meta.url).href
            const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}) })`
            const worker = new Worker(boot, {
              eval: true,
              workerData: { file, racers: RACERS, rounds: ROUNDS, beginsPerRound: BEGINS_PER_ROUND, barrier },
            })
            worker.once('message', resolve)
            worker.once('error', reject)
            worker.once('exit', (code) => code !== 0 && reject(new Error(`racer exited with ${code}`)))
          }),
      ),
    )

    for (let round = 0; round < ROUNDS; round++) {
      const total: Record<string, number> = {}
      for (const report of reports) {
        for (const [outcome, n] of Object.entries(report.begins[round] ?? {}))
          total[outcome] = (total[outcome] ?? 0) + n
      }
      expect(total, `round ${round}`).toEqual({ acquired: 1, in_progress: RACERS * BEGINS_PER_ROUND - 1 })
      const statuses = reports.map((r) => r.runs[round])
      expect(
        statuses.filter((s) => s === 'executed'),
        `round ${round}`,
      ).toHaveLength(1)
      expect(
        statuses.filter((s) => s === 'replayed'),
        `round ${round}`,
      ).toHaveLength(RACERS - 1)
    }
    const effects = setup.prepare('SELECT id, n FROM effects').all() as { id: string; n: number }[]
    expect(effects.filter((e) => e.n !== 1)).toEqual([])
    setup.close()
  })
})
