// The workloads of bench/core.ts: ours (Idempotency.run on a store) and the floors (the raw
// primitive each one stands on), built on the same kind of table, file and pragmas.

import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { fingerprintOf } from '../../src/core/fingerprint.js'
import { Idempotency, MemoryStore, recordId } from '../../src/index.js'
import { DEFAULT_SQLITE_TABLE, SqliteStore, sqliteSchema } from '../../src/stores/sqlite/index.js'
import { LEASE_MS, MASK, mustNotRun, PAYLOAD, produce, REPLAY_KEYS, SCOPE, TTL_MS, VALUE } from './fixtures.js'
import type { Workload } from './measure.js'

const T = DEFAULT_SQLITE_TABLE

export type WorkloadName =
  | 'memNew'
  | 'mapSetGet'
  | 'memDup'
  | 'mapGet'
  | 'sqliteNew'
  | 'rawInsertUpdate'
  | 'sqliteDup'
  | 'sqliteDupFp'
  | 'rawSelect'
  | 'cacheReplay'
  | 'cacheReplayFp'

export interface Row {
  label: string
  ours: WorkloadName
  floor: WorkloadName
  /** Minimum ratio ours / floor; undefined for rows that are informative only. */
  goal?: number
  goalText?: string
}

/** Interleaved order: each row's ours and floor are measured next to each other. */
export const ORDER: readonly WorkloadName[] = [
  'memNew',
  'mapSetGet',
  'memDup',
  'mapGet',
  'sqliteNew',
  'rawInsertUpdate',
  'sqliteDup',
  'sqliteDupFp',
  'rawSelect',
  'cacheReplay',
  'cacheReplayFp',
]

export const ROWS: readonly Row[] = [
  { label: 'memory new key (run vs Map set+get)', ours: 'memNew', floor: 'mapSetGet' },
  { label: 'memory duplicate (run vs Map.get)', ours: 'memDup', floor: 'mapGet' },
  {
    label: 'sqlite new key (run vs INSERT+UPDATE)',
    ours: 'sqliteNew',
    floor: 'rawInsertUpdate',
    goal: 0.6,
    goalText: 'SQLite new keys >= 60% of the raw two-statement floor',
  },
  {
    label: 'sqlite duplicate (run vs SELECT)',
    ours: 'sqliteDup',
    floor: 'rawSelect',
    goal: 0.8,
    goalText: 'SQLite duplicates >= 80% of the raw read',
  },
  {
    label: 'cache replay (run vs sqlite SELECT)',
    ours: 'cacheReplay',
    floor: 'rawSelect',
    goal: 20,
    goalText: 'cache replays >= 20x the SQLite raw read',
  },
  // Informative: the same replays with the fingerprint passed in, so no payload is hashed.
  { label: 'sqlite duplicate, fingerprint given (vs SELECT)', ours: 'sqliteDupFp', floor: 'rawSelect' },
  { label: 'cache replay, fingerprint given (vs SELECT)', ours: 'cacheReplayFp', floor: 'rawSelect' },
]

export interface Bench {
  workloads: Record<WorkloadName, Workload>
  /** A line describing the SQLite setup of both files (they must match). */
  sqliteLine: string
  close(): void
}

export async function createBench(): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-'))
  const idOf = (key: string): string => recordId(SCOPE, key)
  const replayKeys = Array.from({ length: REPLAY_KEYS }, (_, i) => `d${i}`)
  const replayIds = replayKeys.map(idOf)
  const fingerprint = fingerprintOf(PAYLOAD)
  const storedResult = JSON.stringify({ v: VALUE })

  // ---- memory ----------------------------------------------------------------------------
  let memNewIdem = new Idempotency({ store: new MemoryStore(), scope: SCOPE })
  let memNewN = 0
  let map = new Map<string, unknown>()
  let mapN = 0
  const record = { state: 'completed', fingerprint, result: storedResult }

  const memDupIdem = new Idempotency({ store: new MemoryStore(), scope: SCOPE })
  for (const key of replayKeys) await memDupIdem.run({ key, payload: PAYLOAD }, produce)
  let memDupN = 0
  const replayMap = new Map<string, unknown>(replayIds.map((id) => [id, record]))
  let mapGetN = 0

  // ---- sqlite ----------------------------------------------------------------------------
  const db = new Database(join(dir, 'store.db'))
  const store = new SqliteStore({ client: db })
  store.ensureSchema()
  const sqliteIdem = new Idempotency({ store, scope: SCOPE })
  const cachedIdem = new Idempotency({ store, scope: SCOPE, cache: { maxEntries: REPLAY_KEYS } })

  // The floor's own file: the same schema and the same pragmas as SqliteStore sets (busy_timeout, WAL).
  const floorDb = new Database(join(dir, 'floor.db'))
  floorDb.pragma('busy_timeout = 5000')
  floorDb.pragma('journal_mode = WAL')
  floorDb.exec(sqliteSchema())
  const claim = floorDb.prepare(
    `INSERT INTO ${T} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
     VALUES (?, 'in_progress', ?, ?, ?, 1, NULL, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  )
  const storeResult = floorDb.prepare(`UPDATE ${T} SET state = 'completed', result = ? WHERE id = ?`)
  const token = '00000000-0000-4000-8000-000000000000' // as long as a randomUUID()
  // The raw read runs on the store's own connection, against the very rows the duplicates replay.
  const read = db.prepare(`SELECT state, fingerprint, result, expires_at FROM ${T} WHERE id = ?`)

  // Completed records for the duplicates (one pass fills the cache of `cachedIdem` too).
  for (const key of replayKeys) await sqliteIdem.run({ key, payload: PAYLOAD }, produce)
  for (const key of replayKeys) await cachedIdem.run({ key, payload: PAYLOAD }, produce)

  let sqliteNewN = 0
  let rawNewN = 0
  let sqliteDupN = 0
  let sqliteDupFpN = 0
  let rawSelectN = 0
  let cacheN = 0
  let cacheFpN = 0

  const workloads: Record<WorkloadName, Workload> = {
    memNew: {
      sampleOps: 20_000,
      // A fresh store per sample, so that ours and the Map floor insert into maps of the same size.
      prepare: () => {
        memNewIdem = new Idempotency({ store: new MemoryStore(), scope: SCOPE })
      },
      op: () => memNewIdem.run({ key: `n${memNewN++}`, payload: PAYLOAD }, produce),
    },
    mapSetGet: {
      sampleOps: 20_000,
      prepare: () => {
        map = new Map()
      },
      op: () => {
        const id = `5:bench:n${mapN++}`
        map.set(id, record)
        return map.get(id)
      },
    },
    memDup: {
      sampleOps: 20_000,
      op: () => memDupIdem.run({ key: replayKeys[memDupN++ & MASK] as string, payload: PAYLOAD }, mustNotRun),
    },
    mapGet: {
      sampleOps: 20_000,
      op: () => replayMap.get(replayIds[mapGetN++ & MASK] as string),
    },
    sqliteNew: {
      sampleOps: 2_000,
      op: () => sqliteIdem.run({ key: `n${sqliteNewN++}`, payload: PAYLOAD }, produce),
    },
    rawInsertUpdate: {
      sampleOps: 2_000,
      op: () => {
        const id = `5:bench:n${rawNewN++}`
        const now = Date.now()
        if (claim.run(id, fingerprint, token, now + LEASE_MS, now, now, now + TTL_MS).changes !== 1) {
          throw new Error(`bench: raw claim of ${id} inserted nothing`)
        }
        storeResult.run(storedResult, id)
      },
    },
    sqliteDup: {
      sampleOps: 5_000,
      op: () => sqliteIdem.run({ key: replayKeys[sqliteDupN++ & MASK] as string, payload: PAYLOAD }, mustNotRun),
    },
    sqliteDupFp: {
      sampleOps: 5_000,
      op: () => sqliteIdem.run({ key: replayKeys[sqliteDupFpN++ & MASK] as string, fingerprint }, mustNotRun),
    },
    rawSelect: {
      sampleOps: 5_000,
      op: () => {
        const id = replayIds[rawSelectN++ & MASK] as string
        if (read.get(id) === undefined) throw new Error(`bench: raw read found no ${id}`)
      },
    },
    cacheReplay: {
      sampleOps: 20_000,
      op: () => cachedIdem.run({ key: replayKeys[cacheN++ & MASK] as string, payload: PAYLOAD }, mustNotRun),
    },
    cacheReplayFp: {
      sampleOps: 20_000,
      op: () => cachedIdem.run({ key: replayKeys[cacheFpN++ & MASK] as string, fingerprint }, mustNotRun),
    },
  }

  await verify({ sqliteIdem, cachedIdem, memDupIdem, replayKey: replayKeys[0] as string })

  return {
    workloads,
    sqliteLine: sqliteLine(db, floorDb),
    close: () => {
      db.close()
      floorDb.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Fails loudly unless ours does what the row claims it measures. */
async function verify(ctx: {
  sqliteIdem: Idempotency
  cachedIdem: Idempotency
  memDupIdem: Idempotency
  replayKey: string
}): Promise<void> {
  const fresh = await ctx.sqliteIdem.run({ key: 'verify-new', payload: PAYLOAD }, produce)
  if (fresh.status !== 'executed') throw new Error('bench: a new key did not execute')
  for (const idem of [ctx.sqliteIdem, ctx.memDupIdem]) {
    const dup = await idem.run({ key: ctx.replayKey, payload: PAYLOAD }, mustNotRun)
    if (dup.status !== 'replayed' || JSON.stringify(dup.value) !== JSON.stringify(VALUE)) {
      throw new Error('bench: a duplicate was not replayed')
    }
  }
  let cached = 0
  let fromStore = 0
  const off = ctx.cachedIdem.on('replayed', (event) => {
    if (event.cached) cached++
    else fromStore++
  })
  await ctx.cachedIdem.run({ key: ctx.replayKey, payload: PAYLOAD }, mustNotRun)
  off()
  if (cached !== 1 || fromStore !== 0) throw new Error('bench: a cache replay was not served from the cache')
}

function sqliteLine(db: Database.Database, floorDb: Database.Database): string {
  const pragmas = ['journal_mode', 'synchronous', 'busy_timeout', 'cache_size', 'page_size']
  const describe = (d: Database.Database): string =>
    pragmas.map((p) => `${p}=${String(d.pragma(p, { simple: true }))}`).join(' ')
  const ours = describe(db)
  const floor = describe(floorDb)
  if (ours !== floor) throw new Error(`bench: the floor's pragmas differ from the store's: ${floor} vs ${ours}`)
  const require = createRequire(import.meta.url)
  const driver = (require('better-sqlite3/package.json') as { version: string }).version
  const version = db.prepare('SELECT sqlite_version() AS v').get() as { v: string }
  return `sqlite: better-sqlite3 ${driver}, SQLite ${version.v}, file DBs in a temp dir under ${tmpdir()}, ${ours} (store and floor alike)`
}
