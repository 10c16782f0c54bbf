// A racer in its own thread with its own SQLite connection: waits at a barrier with the other
// racers, then claims the same keys at the same instant. Driven by sqlite-racers.test.ts.

import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { SqliteStore } from '../../../../src/stores/sqlite/sqlite-store.js'

interface RacerData {
  file: string
  racers: number
  rounds: number
  beginsPerRound: number
  barrier: SharedArrayBuffer
}

const { file, racers, rounds, beginsPerRound, barrier } = workerData as RacerData
const arrived = new Int32Array(barrier)

/** Block until every racer has reached round `round`. */
function waitForAll(round: number): void {
  const target = racers * (round + 1)
  Atomics.add(arrived, 0, 1)
  Atomics.notify(arrived, 0)
  for (;;) {
    const seen = Atomics.load(arrived, 0)
    if (seen >= target) return
    Atomics.wait(arrived, 0, seen, 50)
  }
}

const db = new Database(file)
const store = new SqliteStore({ client: db })
const idem = new Idempotency({ store, scope: 'racers', onInProgress: 'wait', waitTimeout: '10s' })
const bump = db.prepare('UPDATE effects SET n = n + 1 WHERE id = ?')

const begins: Record<string, number>[] = []
const runs: string[] = []
for (let round = 0; round < rounds; round++) {
  waitForAll(round)
  const outcomes: Record<string, number> = {}
  for (let i = 0; i < beginsPerRound; i++) {
    const begun = await store.begin(`begin-race-${round}`, 'fp', 30_000, 60_000)
    outcomes[begun.outcome] = (outcomes[begun.outcome] ?? 0) + 1
  }
  begins.push(outcomes)
  const out = await idem.run({ key: `run-race-${round}`, payload: { round } }, () => {
    bump.run(`run-race-${round}`)
    return { round }
  })
  runs.push(out.status)
}
await store.close()
db.close()
parentPort?.postMessage({ begins, runs })
