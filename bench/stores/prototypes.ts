// PROTOTYPES of changes this benchmark suggests for src/ (see bench/docs/stores.md), measured beside the
// real thing so that each suggestion comes with a figure. None of this is Idem; delete it once src/
// has taken or refused the change.
//
// 1. Tick batching: begin() and complete() calls made in the same tick (concurrent run()s) go to the
//    store as one beginMany / completeMany: one command and one socket write instead of one each.
// 2. A Lua-free claim: `SET key <claim> PX <retention> NX GET` (Redis >= 7.0) answers a duplicate
//    with the record, and creates a claim, in one native command (workloads in section-stores.ts).

import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { BeginResult } from '../../src/contract/types.js'
import { type IdempotencyStore, LeaseLostError } from '../../src/index.js'
import { COMPLETE } from '../../src/stores/redis/redis-scripts.js'
import { LEASE_MS } from '../lib/fixtures.js'
import type { Workload } from '../lib/measure.js'

interface Pending<T> {
  resolve: (value: T) => void
  reject: (error: unknown) => void
}
type PendingBegin = Pending<BeginResult> & { id: string; fingerprint: string; leaseMs: number; ttlMs: number }
type PendingComplete = Pending<void> & { id: string; token: string; result: string; ttlMs: number }

/** Prototype 1, as a wrapper: the real store's beginMany/completeMany do the work. */
export class TickBatchingStore implements IdempotencyStore {
  readonly inner: IdempotencyStore
  #begins: PendingBegin[] = []
  #completes: PendingComplete[] = []

  constructor(inner: IdempotencyStore) {
    this.inner = inner
  }

  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    return new Promise((resolve, reject) => {
      // process.nextTick runs after the current microtasks: it collects every call of this tick.
      if (this.#begins.push({ id, fingerprint, leaseMs, ttlMs, resolve, reject }) === 1) {
        process.nextTick(() => this.#flushBegins())
      }
    })
  }

  complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#completes.push({ id, token, result, ttlMs, resolve, reject }) === 1) {
        process.nextTick(() => this.#flushCompletes())
      }
    })
  }

  #flushBegins(): void {
    const all = this.#begins
    this.#begins = []
    for (const batch of groupBy(all, (b) => `${b.leaseMs}/${b.ttlMs}`)) {
      const first = batch[0] as PendingBegin
      if (batch.length === 1) {
        this.inner.begin(first.id, first.fingerprint, first.leaseMs, first.ttlMs).then(first.resolve, first.reject)
        continue
      }
      this.inner.beginMany(batch, first.leaseMs, first.ttlMs).then(
        (results) => {
          for (const [i, b] of batch.entries()) b.resolve(results[i] as BeginResult)
        },
        (error: unknown) => {
          for (const b of batch) b.reject(error)
        },
      )
    }
  }

  #flushCompletes(): void {
    const all = this.#completes
    this.#completes = []
    for (const batch of groupBy(all, (c) => String(c.ttlMs))) {
      const first = batch[0] as PendingComplete
      if (batch.length === 1) {
        this.inner.complete(first.id, first.token, first.result, first.ttlMs).then(first.resolve, first.reject)
        continue
      }
      this.inner.completeMany(batch, first.ttlMs).then(
        (outcomes) => {
          for (const [i, c] of batch.entries()) {
            if (outcomes[i] === 'completed') c.resolve()
            else c.reject(new LeaseLostError(`prototype: ${c.id} not completed`))
          }
        },
        (error: unknown) => {
          for (const c of batch) c.reject(error)
        },
      )
    }
  }

  release(id: string, token: string): Promise<void> {
    return this.inner.release(id, token)
  }
  extend(id: string, token: string, leaseMs: number): Promise<number> {
    return this.inner.extend(id, token, leaseMs)
  }
  get(id: string) {
    return this.inner.get(id)
  }
  delete(id: string): Promise<boolean> {
    return this.inner.delete(id)
  }
  beginMany(...args: Parameters<IdempotencyStore['beginMany']>) {
    return this.inner.beginMany(...args)
  }
  completeMany(...args: Parameters<IdempotencyStore['completeMany']>) {
    return this.inner.completeMany(...args)
  }
  sweep(limit: number): Promise<number> {
    return this.inner.sweep(limit)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const key = keyOf(item)
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [item])
    else group.push(item)
  }
  return [...groups.values()]
}

/**
 * Prototype 2, server cost only: a duplicate answered by `SET … NX GET` (the value of the existing
 * record, nothing written). A real store would parse it in JavaScript and fall back to its begin
 * script only for an in-progress record whose lease may have lapsed.
 */
export function setNxGetDup(redis: Redis, pick: () => string, claim: string, ttlMs: number): Workload {
  return {
    sampleOps: 1_000,
    op: async () => {
      const record = await redis.call('SET', pick(), claim, 'PX', ttlMs, 'NX', 'GET')
      if (typeof record !== 'string' || record[0] !== 'c')
        throw new Error('bench: SET NX GET found no completed record')
    },
  }
}

/**
 * Prototype 2 for a new key: the claim by `SET … NX GET` (nil: created), then the store's own
 * complete script. The claim carries this process's clock here; a real store would keep times
 * out of the claim and derive the lease from the key's expiry (Redis' clock), see bench/docs/stores.md.
 */
export function setNxGetNew(
  redis: Redis,
  keyOf: (n: number) => string,
  fingerprint: string,
  result: string,
  ttlMs: number,
): Workload {
  let n = 0
  return {
    sampleOps: 1_000,
    op: async () => {
      const key = keyOf(n++)
      const token = randomUUID()
      const now = Date.now()
      const claim = `p1,${now},${now},${now + LEASE_MS},${fingerprint.length},${fingerprint}${token}`
      if ((await redis.call('SET', key, claim, 'PX', Math.max(ttlMs, LEASE_MS), 'NX', 'GET')) !== null) {
        throw new Error(`bench: SET NX GET found ${key}`)
      }
      if ((await redis.evalsha(COMPLETE.sha, 1, key, token, result, ttlMs)) !== 1) {
        throw new Error('bench: the complete script did not complete the prototype claim')
      }
    },
  }
}

/** How TieredStore's RedisResultCache reads one copy today: a pipeline holding one GET. */
export function pipelineOfOneGet(redis: Redis, pick: () => string): Workload {
  return {
    sampleOps: 1_000,
    op: async () => {
      const pipeline = redis.pipeline()
      pipeline.get(pick())
      const replies = await pipeline.exec()
      if (typeof replies?.[0]?.[1] !== 'string') throw new Error('bench: the pipelined read found nothing')
    },
  }
}
