// A reference model of the record state machine, written apart from the stores (it shares no
// code with store/transitions.ts), and a fast-check program that drives a store and the model
// with the same random operations by several workers and compares every observation.

import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { BeginResult, CompleteManyOutcome, IdempotencyStore } from '../../../src/contract/types.js'

export const LEASE = 100
export const TTL = 400
const KEYS = ['k0', 'k1'] as const
const WORKERS = 3
const FINGERPRINTS = ['fa', 'fb'] as const

interface ModelRecord {
  state: 'in_progress' | 'completed'
  fp: string
  /** Generation of the claim that owns it: stands for the owner token. */
  gen: number
  leaseUntil: number
  attempt: number
  result: string | null
  expiresAt: number
}

type Op =
  | { kind: 'begin'; worker: number; key: number; fp: number }
  | { kind: 'beginMany'; worker: number; keys: number[]; fp: number }
  | { kind: 'complete'; worker: number; key: number }
  | { kind: 'completeMany'; worker: number }
  | { kind: 'release'; worker: number; key: number }
  | { kind: 'extend'; worker: number; key: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'sweep'; limit: number }
  | { kind: 'get'; key: number }
  | { kind: 'delete'; key: number }

const worker = fc.integer({ min: 0, max: WORKERS - 1 })
const key = fc.integer({ min: 0, max: KEYS.length - 1 })
const fp = fc.integer({ min: 0, max: FINGERPRINTS.length - 1 })

export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('begin' as const), worker, key, fp }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('beginMany' as const),
      worker,
      keys: fc.array(key, { minLength: 1, maxLength: 3 }),
      fp,
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('complete' as const), worker, key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('completeMany' as const), worker }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), worker, key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('extend' as const), worker, key }) },
  {
    weight: 3,
    // Boundaries on purpose: exactly one lease, exactly the ttl, and a millisecond either side.
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 0, max: (LEASE * 3) / 2 }) },
        { weight: 2, arbitrary: fc.constantFrom(1, LEASE - 1, LEASE, LEASE + 1, TTL, TTL + 1) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * TTL }) },
      ),
    }),
  },
  // A limit below the number of expired records leaves the choice of which go to the store (SQLite
  // takes the oldest), and that choice changes later counts; the conformance suite covers limits.
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('sweep' as const), limit: fc.integer({ min: KEYS.length, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('get' as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
)

/** What the model expects of a `begin`; `gen` names the claim it creates, when it creates one. */
type Expected = Record<string, unknown> & { gen?: number }

export interface ModelHarness {
  store: IdempotencyStore
  advance(ms: number): void
  close(): Promise<void>
}

/** Run one operation sequence against a fresh store and the model; throws on the first divergence. */
export async function runAgainstModel(harness: ModelHarness, ops: readonly Op[], start: number): Promise<void> {
  const { store } = harness
  const records = new Map<string, ModelRecord>()
  let now = start
  let nextGen = 1
  let resultSeq = 0
  // What each worker holds per key: the model generation and the store's real token.
  const held = Array.from({ length: WORKERS }, () => new Map<string, { gen: number; token: string }>())
  const alive = (id: string): ModelRecord | undefined => {
    const r = records.get(id)
    return r !== undefined && r.expiresAt > now ? r : undefined
  }
  const owns = (w: number, id: string): ModelRecord | undefined => {
    const r = alive(id)
    const h = held[w]?.get(id)
    return r !== undefined && h !== undefined && r.state === 'in_progress' && r.gen === h.gen ? r : undefined
  }
  const modelBegin = (id: string, fingerprint: string): Expected => {
    const r = alive(id)
    if (r === undefined) {
      const gen = nextGen++
      records.set(id, {
        state: 'in_progress',
        fp: fingerprint,
        gen,
        leaseUntil: now + LEASE,
        attempt: 1,
        result: null,
        expiresAt: now + Math.max(TTL, LEASE),
      })
      return { outcome: 'acquired', attempt: 1, recovered: false, leaseUntil: now + LEASE, gen }
    }
    if (r.fp !== fingerprint) return { outcome: 'mismatch', state: r.state }
    if (r.state === 'completed') {
      return { outcome: 'completed', result: r.result ?? '', attempt: r.attempt, expiresInMs: r.expiresAt - now }
    }
    if (r.leaseUntil > now) {
      return { outcome: 'in_progress', leaseUntil: r.leaseUntil, retryAfterMs: r.leaseUntil - now, attempt: r.attempt }
    }
    const gen = nextGen++
    r.gen = gen
    r.attempt += 1
    r.leaseUntil = now + LEASE
    r.expiresAt = Math.max(r.expiresAt, now + Math.max(TTL, LEASE))
    return { outcome: 'acquired', attempt: r.attempt, recovered: true, leaseUntil: r.leaseUntil, gen }
  }
  const checkBegin = (
    w: number,
    id: string,
    real: BeginResult,
    expected: ReturnType<typeof modelBegin>,
    at: string,
  ) => {
    const { gen, ...shape } = expected as { gen?: number }
    const comparable = { ...real } as Record<string, unknown>
    delete comparable.token
    delete comparable.completedAt
    assert.deepEqual(comparable, shape, `${at}: begin("${id}") by worker ${w}`)
    if (real.outcome === 'acquired' && gen !== undefined) held[w]?.set(id, { gen, token: real.token })
  }
  const tokenOf = (w: number, id: string): string => held[w]?.get(id)?.token ?? `never-held-by-${w}`

  try {
    for (const [step, op] of ops.entries()) {
      const at = `step ${step} ${JSON.stringify(op)}`
      switch (op.kind) {
        case 'begin': {
          const id = KEYS[op.key] as string
          const fingerprint = FINGERPRINTS[op.fp] as string
          const real = await store.begin(id, fingerprint, LEASE, TTL)
          checkBegin(op.worker, id, real, modelBegin(id, fingerprint), at)
          break
        }
        case 'beginMany': {
          const fingerprint = FINGERPRINTS[op.fp] as string
          const ids = op.keys.map((k) => KEYS[k] as string)
          const real = await store.beginMany(
            ids.map((id) => ({ id, fingerprint })),
            LEASE,
            TTL,
          )
          assert.equal(real.length, ids.length, at)
          ids.forEach((id, i) => {
            checkBegin(op.worker, id, real[i] as BeginResult, modelBegin(id, fingerprint), at)
          })
          break
        }
        case 'complete': {
          const id = KEYS[op.key] as string
          const result = `"r${resultSeq++}"`
          const r = owns(op.worker, id)
          const outcome = await store.complete(id, tokenOf(op.worker, id), result, TTL).then(
            () => 'completed',
            (e: { code?: string }) => e.code,
          )
          assert.equal(outcome, r ? 'completed' : 'LEASE_LOST', at)
          if (r) Object.assign(r, { state: 'completed', result, expiresAt: now + TTL })
          break
        }
        case 'completeMany': {
          const ids = [...(held[op.worker]?.keys() ?? [])]
          const items = ids.map((id) => ({ id, token: tokenOf(op.worker, id), result: `"r${resultSeq++}"` }))
          const expected: CompleteManyOutcome[] = items.map((item) => {
            const r = owns(op.worker, item.id)
            if (!r) return 'lease_lost'
            Object.assign(r, { state: 'completed', result: item.result, expiresAt: now + TTL })
            return 'completed'
          })
          assert.deepEqual(await store.completeMany(items, TTL), expected, at)
          break
        }
        case 'release': {
          const id = KEYS[op.key] as string
          const r = owns(op.worker, id)
          const outcome = await store.release(id, tokenOf(op.worker, id)).then(
            () => 'released',
            (e: { code?: string }) => e.code,
          )
          assert.equal(outcome, r ? 'released' : 'LEASE_LOST', at)
          if (r) records.delete(id)
          break
        }
        case 'extend': {
          const id = KEYS[op.key] as string
          const r = owns(op.worker, id)
          const outcome = await store.extend(id, tokenOf(op.worker, id), LEASE).then(
            (leaseUntil) => leaseUntil,
            (e: { code?: string }) => e.code,
          )
          assert.equal(outcome, r ? now + LEASE : 'LEASE_LOST', at)
          if (r) {
            r.leaseUntil = now + LEASE
            r.expiresAt = Math.max(r.expiresAt, r.leaseUntil)
          }
          break
        }
        case 'advance':
          now += op.ms
          harness.advance(op.ms)
          break
        case 'sweep': {
          const expired = [...records.entries()].filter(([, r]) => r.expiresAt <= now).map(([id]) => id)
          const removed = expired.slice(0, op.limit)
          for (const id of removed) records.delete(id)
          assert.equal(await store.sweep(op.limit), removed.length, at)
          break
        }
        case 'get': {
          const id = KEYS[op.key] as string
          const r = alive(id)
          const real = await store.get(id)
          assert.deepEqual(
            real && { state: real.state, fp: real.fingerprint, attempt: real.attempt, result: real.result },
            r ? { state: r.state, fp: r.fp, attempt: r.attempt, result: r.result } : null,
            at,
          )
          if (r && real && r.state === 'in_progress') assert.equal(real.leaseUntil, r.leaseUntil, at)
          break
        }
        case 'delete': {
          const id = KEYS[op.key] as string
          const wasAlive = alive(id) !== undefined
          records.delete(id)
          assert.equal(await store.delete(id), wasAlive, at)
          break
        }
      }
    }
  } finally {
    await harness.close()
  }
}

/** The property: for any operation sequence, the store behaves as the model. */
export function storeMatchesModel(makeHarness: (start: number) => ModelHarness) {
  const start = Date.UTC(2026, 0, 1)
  return fc.asyncProperty(fc.array(opArbitrary, { minLength: 5, maxLength: 80, size: 'max' }), (ops) =>
    runAgainstModel(makeHarness(start), ops, start),
  )
}
