// The detector watching real runs: an Idempotency on a MemoryStore driven with duplicates, and
// the HTTP core's requests, counted once however the same idem is reached.

import { afterEach, describe, expect, it } from 'vitest'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import type { HttpRequest } from '../../http/core/types.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import type { Anomaly } from '../core/anomaly.js'
import { AnomalyDetector } from './detector.js'

const WINDOW = 10_000

const detectors: AnomalyDetector[] = []
afterEach(() => {
  for (const detector of detectors.splice(0)) detector.close()
})

function rig(options: { warmup?: number; minEvents?: number } = {}) {
  let now = Date.UTC(2026, 0, 1)
  const detector = new AnomalyDetector({ window: WINDOW, now: () => now, warmup: 5, minEvents: 10, ...options })
  detectors.push(detector)
  const anomalies: Anomaly[] = []
  detector.on('anomaly', (a) => anomalies.push(a))
  return {
    detector,
    anomalies,
    next: () => {
      now += WINDOW
    },
  }
}

describe('watching an Idempotency', () => {
  it('raises the alert when runs are driven with duplicates', async () => {
    const { detector, anomalies, next } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    detector.watch(idem)
    let n = 0
    for (let w = 0; w < 10; w++) {
      for (let i = 0; i < 20; i++) await idem.run({ key: `order-${n++}`, scope: 'orders' }, () => 'ok')
      await idem.run({ key: `order-${n - 1}`, scope: 'orders' }, () => 'ok') // one duplicate a window
      next()
    }
    expect(anomalies).toEqual([])
    for (let i = 0; i < 30; i++) {
      const out = await idem.run({ key: 'order-0', scope: 'orders' }, () => 'ok')
      expect(out.status).toBe('replayed')
    }
    expect(anomalies).toEqual([
      {
        kind: 'replays',
        subject: 'scope',
        scope: 'orders',
        rate: 1,
        baseline: expect.any(Number),
        at: expect.any(Number),
      },
    ])
    expect(anomalies[0]?.baseline).toBeCloseTo(0.1, 5)
  })

  it('counts mismatches, and stops counting once stopped', async () => {
    const { detector, anomalies, next } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    const stop = detector.watch(idem)
    for (let w = 0; w < 10; w++) {
      for (let i = 0; i < 20; i++) await idem.run({ key: `w${w}-${i}`, payload: { i } }, () => 'ok')
      next()
    }
    const reuse = () => idem.run({ key: 'w0-0', payload: { i: 'other' } }, () => 'ok').catch(() => undefined)
    stop()
    for (let i = 0; i < 30; i++) await reuse()
    expect(anomalies).toEqual([])
    detector.watch(idem)
    for (let i = 0; i < 30; i++) await reuse()
    expect(anomalies).toMatchObject([{ kind: 'mismatches', subject: 'scope', scope: 'default' }])
  })

  it('refuses what it cannot watch', () => {
    const { detector } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    const consumer = new IdempotentConsumer({ idem, handler: () => undefined })
    expect(() => detector.watch(consumer as never)).toThrow(/its idem/)
    expect(() => detector.watch({} as never)).toThrow(TypeError)
  })
})

describe('watching an HttpIdempotency', () => {
  const post = (key: string, who: string): HttpRequest => ({
    method: 'POST',
    url: '/orders',
    route: '/orders',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${who}`, 'idempotency-key': key },
    body: '{"amount":1}',
  })

  async function send(http: HttpIdempotency, request: HttpRequest): Promise<void> {
    const decision = await http.decide(request)
    if (decision.action === 'proceed') {
      decision.capture.write('{"id":1}')
      await decision.capture.end(201, [['content-type', 'application/json']])
    }
  }

  it('watches its idem once, even when the idem is given too, and alerts per caller and per route', async () => {
    const { detector, anomalies, next } = rig({ minEvents: 11 })
    const http = new HttpIdempotency({ store: new MemoryStore() })
    const stopHttp = detector.watch(http)
    const stopIdem = detector.watch(http.idem)
    detector.watch(http)
    stopHttp()
    stopHttp() // a stop counts once
    let n = 0
    for (let w = 0; w < 10; w++) {
      for (const who of ['alice', 'bob']) {
        for (let i = 0; i < 10; i++) await send(http, post(`k${n++}`, who))
      }
      await send(http, post(`k${n - 1}`, 'bob'))
      next()
    }
    for (let i = 0; i < 30; i++) await send(http, post('k0', 'alice'))
    stopIdem()
    const byPrincipal = anomalies.find((a) => a.subject === 'principal')
    // Each replay was counted once: the alert came at the 11th (counted twice, it would be at the 6th, as 12).
    expect(byPrincipal).toMatchObject({ kind: 'replays', scope: 'http|POST /orders', rate: 1.1 })
    expect(byPrincipal?.principal).toMatch(/^[A-Za-z0-9_-]{27}$/)
    expect(anomalies.find((a) => a.subject === 'scope')).toMatchObject({ kind: 'replays', scope: 'http|POST /orders' })
    expect(JSON.stringify(anomalies)).not.toMatch(/alice|Bearer/)
  })
})
