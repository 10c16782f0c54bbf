// idem.instrument(probe): what a probe is told (store timings, runs, executions) and what it may
// not change (outcomes, the store users see, a run when the probe throws).

import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { codeOf } from '../../test/support/core/code-of.test-helper.js'
import { FaultyStore } from '../../test/support/core/faulty-store.test-helper.js'
import { sqliteRig } from '../../test/support/transaction/transaction-rigs.test-helper.js'
import { ErrorCode } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { Idempotency } from './idempotency.js'
import type { ExecutionInfo, Probe, RunInfo, StoreOperation } from './probe.js'

/** A probe that writes down everything it is told, in order. */
function recorder() {
  const log: string[] = []
  const calls: { operation: StoreOperation; durationMs: number; failed: boolean }[] = []
  const probe: Probe = {
    storeCall(operation, startedAt, durationMs, error) {
      expect(startedAt).toBeGreaterThan(0)
      expect(startedAt + durationMs).toBeLessThanOrEqual(performance.now())
      calls.push({ operation, durationMs, failed: error !== undefined })
      log.push(`store ${operation}${error === undefined ? '' : ' failed'}`)
    },
    async aroundRun<R>(info: RunInfo, body: () => Promise<R>): Promise<R> {
      log.push(`run ${info.kind} ${info.scope} ${info.key}`)
      try {
        return await body()
      } finally {
        log.push('run end')
      }
    },
    async aroundExecution<R>(info: ExecutionInfo, call: () => Promise<R>): Promise<R> {
      log.push(`execute attempt ${info.attempt}${info.recovered ? ' recovered' : ''}`)
      return call()
    },
  }
  return { probe, log, calls }
}

describe('idem.instrument', () => {
  it('tells a probe about the run, the claim, the execution and the completion, in order', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), scope: 'orders' })
    const { probe, log, calls } = recorder()
    idem.instrument(probe)
    expect(await idem.run({ key: 'a' }, () => 'ok')).toEqual({ status: 'executed', value: 'ok' })
    expect(await idem.run({ key: 'a' }, () => 'again')).toEqual({ status: 'replayed', value: 'ok' })
    expect(log).toEqual([
      'run run orders a',
      'store begin',
      'execute attempt 1',
      'store complete',
      'run end',
      'run run orders a',
      'store begin',
      'run end',
    ])
    expect(calls.every((call) => call.durationMs >= 0 && !call.failed)).toBe(true)
  })

  it('leaves idem.store the store it was given, and detaches cleanly', async () => {
    const store = new MemoryStore()
    const idem = new Idempotency({ store })
    const { probe, log } = recorder()
    const detach = idem.instrument(probe)
    expect(idem.store).toBe(store)
    await idem.run({ key: 'a' }, () => 1)
    const seen = log.length
    detach()
    await idem.run({ key: 'b' }, () => 2)
    expect(log).toHaveLength(seen)
    expect(await store.get(idem.recordId('b'))).not.toBeNull()
  })

  it('times a failing store call and the takeover of a lapsed lease', async () => {
    const faulty = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store: faulty, lease: 40 })
    const { probe, log } = recorder()
    idem.instrument(probe)
    faulty.fail('begin', 1)
    expect(await codeOf(idem.run({ key: 'k' }, () => 1))).toBe(ErrorCode.STORE_UNAVAILABLE)
    expect(log).toContain('store begin failed')

    // A worker that claims and stalls; its lease lapses; the next call takes over.
    const token = await faulty.inner.begin(idem.recordId('stalled'), 'fp', 40, 60_000)
    expect(token.outcome).toBe('acquired')
    await sleep(60)
    log.length = 0
    await idem.run({ key: 'stalled', fingerprint: 'fp' }, () => 'recovered')
    expect(log).toContain('execute attempt 2 recovered')
  })

  it('sees renewals of a long function as extend calls', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), lease: 30 })
    const { probe, calls } = recorder()
    idem.instrument(probe)
    await idem.run({ key: 'slow' }, () => sleep(80))
    expect(calls.filter((call) => call.operation === 'extend').length).toBeGreaterThanOrEqual(2)
  })

  it('wraps each member of runMany, whose claim is one beginMany', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const { probe, log } = recorder()
    idem.instrument(probe)
    await Promise.all(idem.runMany([{ key: 'x' }, { key: 'y' }], (_ctx, i) => i))
    expect(log.filter((line) => line === 'store beginMany')).toHaveLength(1)
    expect(log.filter((line) => line.startsWith('run runMany'))).toEqual([
      'run runMany default x',
      'run runMany default y',
    ])
    expect(log.filter((line) => line.startsWith('execute'))).toHaveLength(2)
  })

  it('times the claim and completion of transaction mode, inside the transaction', async () => {
    const rig = await sqliteRig()
    try {
      const idem = rig.idem()
      const { probe, log } = recorder()
      idem.instrument(probe)
      await idem.transaction(rig.db, { key: 't' }, async (_tx, ctx) => {
        await rig.addEffect(ctx.sql, 't')
        return 'paid'
      })
      expect(log).toEqual([
        'run transaction default t',
        'store begin',
        'execute attempt 1',
        'store complete',
        'run end',
      ])
      expect(await rig.effect('t')).toBe(1)
      // A function that returns nothing has its outcome written by the claim: no completion to time.
      log.length = 0
      await idem.transaction(rig.db, { key: 'u' }, (_tx, ctx) => rig.addEffect(ctx.sql, 'u'))
      expect(log).toEqual(['run transaction default u', 'store begin', 'execute attempt 1', 'run end'])
    } finally {
      await rig.cleanup()
    }
  })

  it('passes the origin a caller gives (a delivery, a request) to aroundRun', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const origins: unknown[] = []
    idem.instrument({
      aroundRun(info, body) {
        origins.push(info.origin?.headers?.())
        return body()
      },
    })
    await idem.run({ key: 'a', origin: { headers: () => ({ traceparent: 'tp' }) } }, () => 1)
    await idem.run({ key: 'b' }, () => 1)
    expect(origins).toEqual([{ traceparent: 'tp' }, undefined])
  })

  it('never lets a throwing storeCall change an outcome', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    idem.instrument({
      storeCall() {
        throw new Error('probe bug')
      },
    })
    expect(await idem.run({ key: 'a' }, () => 'ok')).toEqual({ status: 'executed', value: 'ok' })
    expect(await idem.run({ key: 'a' }, () => 'no')).toEqual({ status: 'replayed', value: 'ok' })
  })

  it('nests two probes, the first attached outermost', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const order: string[] = []
    const probe = (name: string): Probe => ({
      async aroundRun(_info, body) {
        order.push(`${name} in`)
        const out = await body()
        order.push(`${name} out`)
        return out
      },
      storeCall: (operation) => void order.push(`${name} ${operation}`),
    })
    idem.instrument(probe('a'))
    idem.instrument(probe('b'))
    await idem.run({ key: 'k' }, () => 1)
    expect(order).toEqual(['a in', 'b in', 'a begin', 'b begin', 'a complete', 'b complete', 'b out', 'a out'])
  })

  it('skips every hook of a probe that is not enabled, and uses it again once it is', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const { probe, log } = recorder()
    let on = false
    idem.instrument({ ...probe, enabled: () => on })
    await idem.run({ key: 'off' }, () => 1)
    expect(log).toEqual([])
    on = true
    await idem.run({ key: 'on' }, () => 1)
    expect(log).toEqual(['run run default on', 'store begin', 'execute attempt 1', 'store complete', 'run end'])
  })

  it('keeps combined probes enabled while one of them is, and tells only that one', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const seen: string[] = []
    idem.instrument({ enabled: () => false, storeCall: (operation) => void seen.push(`off ${operation}`) })
    idem.instrument({ enabled: () => true, storeCall: (operation) => void seen.push(`on ${operation}`) })
    await idem.run({ key: 'k' }, () => 1)
    // The disabled one is told nothing, the other everything.
    expect(seen).toEqual(['on begin', 'on complete'])
  })

  it('refuses something that is not a probe', () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    expect(() => idem.instrument(undefined as unknown as Probe)).toThrow(/instrument needs a probe/)
  })
})
