// HTTP scopes: each route is a subject and so is each caller on it; one caller's retry loop
// alerts as that caller, and a million distinct callers never grow the detector past its cap
// nor push out the routes.

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import { scopeOf } from '../../http/core/request-identity.js'
import type { Anomaly } from '../core/anomaly.js'
import { AnomalyDetector } from './detector.js'

const WINDOW = 10_000
const ROUTE = 'http|POST /orders'

const principal = (n: number) => scopeOf('http', `Bearer client-${n}`, 'POST', '/orders')
const hashOf = (scope: string) => scope.split('|')[1] as string

const detectors: AnomalyDetector[] = []
afterEach(() => {
  for (const detector of detectors.splice(0)) detector.close()
})

function rig(options: { maxSubjects?: number } = {}) {
  let now = Date.UTC(2026, 0, 1)
  const detector = new AnomalyDetector({ window: WINDOW, now: () => now, ...options })
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

/** Per window, each of `clients` callers makes `calls` calls, one of them a replay every other window. */
function ordinary(detector: AnomalyDetector, clients: number, calls: number, w: number): void {
  for (let c = 0; c < clients; c++) {
    for (let i = 0; i < calls; i++) detector.observe(principal(c), i === 0 && (w + c) % 2 === 0 ? 'replay' : 'call')
  }
}

describe('per principal', () => {
  it("one caller's retry loop alerts as that principal, and as the route when it moves the route's rate", () => {
    const { detector, anomalies, next } = rig()
    for (let w = 0; w < 40; w++) {
      ordinary(detector, 20, 5, w)
      next()
    }
    expect(anomalies).toEqual([])
    ordinary(detector, 20, 5, 40)
    for (let i = 0; i < 60; i++) detector.observe(principal(7), 'replay')
    expect(anomalies).toHaveLength(2)
    const byPrincipal = anomalies.find((a) => a.subject === 'principal')
    expect(byPrincipal).toEqual({
      kind: 'replays',
      subject: 'principal',
      scope: ROUTE,
      principal: hashOf(principal(7)),
      rate: expect.any(Number),
      baseline: expect.any(Number),
      at: expect.any(Number),
    })
    expect(byPrincipal?.principal).toMatch(/^[A-Za-z0-9_-]{27}$/)
    // The route's own subject alerts too: 60 extra replays on a route that sees about 10.
    expect(anomalies.find((a) => a.subject === 'scope')).toMatchObject({ kind: 'replays', scope: ROUTE })
    expect(anomalies.find((a) => a.subject === 'scope')).not.toHaveProperty('principal')
  })

  it("alerts as the principal only when the loop is lost in the route's own traffic", () => {
    const { detector, anomalies, next } = rig()
    for (let w = 0; w < 40; w++) {
      ordinary(detector, 200, 10, w)
      next()
    }
    ordinary(detector, 200, 10, 40)
    // 30 replays from one caller against ~100 a window on the route (limit ~ 100 + 4 × 10).
    for (let i = 0; i < 30; i++) detector.observe(principal(3), 'replay')
    expect(anomalies).toEqual([expect.objectContaining({ subject: 'principal', principal: hashOf(principal(3)) })])
  })

  it('tracks anonymous callers as the route alone', () => {
    const { detector } = rig()
    detector.observe(scopeOf('http', undefined, 'POST', '/orders'), 'call')
    detector.observe(principal(1), 'call')
    expect(detector.size).toBe(2) // the route, and client 1 on it
  })
})

describe('memory', () => {
  it('stays bounded over a million distinct principals', () => {
    const maxSubjects = 10_000
    const { detector, next } = rig({ maxSubjects })
    // The subject count is the hard assertion; the heap is measured after a full collection.
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as (() => void) | undefined
    gc?.()
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < 1_000_000; i++) {
      detector.observe(`http|${String(i).padStart(27, 'A')}|POST /orders`, i % 10 === 0 ? 'replay' : 'call')
      if (i % 100_000 === 99_999) {
        expect(detector.size).toBeLessThanOrEqual(maxSubjects)
        next()
      }
    }
    expect(detector.size).toBe(maxSubjects)
    gc?.()
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 * 1024 * 1024)
  })

  it('never lets principals push out a route', () => {
    const { detector, anomalies, next } = rig({ maxSubjects: 100 })
    let n = 0
    for (let w = 0; w < 40; w++) {
      // 100 calls a window, 2 of them replays, each from a caller never seen before.
      for (let i = 0; i < 100; i++) detector.observe(principal(n++), i < 2 ? 'replay' : 'call')
      expect(detector.size).toBeLessThanOrEqual(100)
      next()
    }
    for (let i = 0; i < 300; i++) detector.observe(principal(n++), 'replay')
    expect(anomalies).toMatchObject([{ subject: 'scope', scope: ROUTE, kind: 'replays' }])
  })

  it('forgets an evicted principal, which learns afresh when seen again', () => {
    const { detector, anomalies, next } = rig({ maxSubjects: 3 })
    for (let w = 0; w < 40; w++) {
      detector.observe(principal(1), 'call')
      detector.observe(principal(2), 'call')
      next()
    }
    // Principal 3 takes the place of the least recently seen one, principal 1.
    detector.observe(principal(2), 'call')
    detector.observe(principal(3), 'call')
    for (let i = 0; i < 100; i++) detector.observe(principal(1), 'replay')
    // Principal 1 came back with no baseline: no alert as principal 1; the route alerts.
    expect(anomalies.map((a) => a.subject)).toEqual(['scope'])
    for (let i = 0; i < 100; i++) detector.observe(principal(2), 'replay')
    expect(anomalies.map((a) => a.subject)).toEqual(['scope'])
    expect(detector.size).toBe(3)
  })
})
