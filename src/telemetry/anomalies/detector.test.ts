// The detector on one scope fed by hand with a manual clock: a storm after a quiet baseline
// alerts once per episode, steady traffic (however duplicated, however noisy, however it grows)
// never does, nothing alerts while the baseline is learned, and an episode ends as it should.

import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Anomaly } from '../core/anomaly.js'
import { AnomalyDetector } from './detector.js'
import type { AnomalyResolved } from './judge.js'
import type { AnomalyDetectorOptions } from './options.js'

const WINDOW = 10_000

/** A seeded PRNG (mulberry32): noise that is the same on every run. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const between = (rnd: () => number, low: number, high: number) => low + Math.floor(rnd() * (high - low + 1))

interface Window {
  calls?: number
  replays?: number
  mismatches?: number
}

function rig(options: AnomalyDetectorOptions = {}) {
  let now = Date.UTC(2026, 0, 1)
  const detector = new AnomalyDetector({ window: WINDOW, now: () => now, ...options })
  const anomalies: Anomaly[] = []
  const resolved: AnomalyResolved[] = []
  detector.on('anomaly', (a) => anomalies.push(a))
  detector.on('resolved', (r) => resolved.push(r))
  /** One window of traffic on `scope`, spread over it, then the clock moves to the next window. */
  const window = (w: Window, scope = 'orders') => {
    const events = [
      ...Array<'call'>(w.calls ?? 0).fill('call'),
      ...Array<'replay'>(w.replays ?? 0).fill('replay'),
      ...Array<'mismatch'>(w.mismatches ?? 0).fill('mismatch'),
    ]
    const start = now
    events.forEach((kind, i) => {
      now = start + Math.floor((i * WINDOW) / events.length)
      detector.observe(scope, kind)
    })
    now = start + WINDOW
  }
  return {
    detector,
    anomalies,
    resolved,
    window,
    advance: (ms: number) => {
      now += ms
    },
  }
}

const detectors: AnomalyDetector[] = []
afterEach(() => {
  for (const detector of detectors.splice(0)) detector.close()
  vi.useRealTimers()
})

function quiet(rnd: () => number): Window {
  return { calls: 100, replays: between(rnd, 1, 3) }
}

describe('a replay storm after a quiet baseline', () => {
  it('raises exactly one alert per episode', () => {
    const { detector, anomalies, resolved, window } = rig()
    detectors.push(detector)
    const rnd = random(1)
    for (let w = 0; w < 40; w++) window(quiet(rnd))
    expect(anomalies).toEqual([])

    window({ calls: 100, replays: 300 })
    expect(anomalies).toHaveLength(1)
    expect(anomalies[0]).toMatchObject({ kind: 'replays', subject: 'scope', scope: 'orders', rate: expect.any(Number) })
    expect(anomalies[0]).not.toHaveProperty('principal')
    // The baseline is about 2 per window: 0.2/s; the alert came mid-window, once past the limit.
    expect(anomalies[0]?.baseline).toBeGreaterThan(0.1)
    expect(anomalies[0]?.baseline).toBeLessThan(0.3)
    expect(anomalies[0]?.rate).toBeLessThan(30)

    for (let w = 0; w < 10; w++) window({ calls: 100, replays: 300 })
    expect(anomalies).toHaveLength(1)
    expect(resolved).toEqual([])

    for (let w = 0; w < 5; w++) window(quiet(rnd))
    expect(resolved).toMatchObject([{ kind: 'replays', subject: 'scope', scope: 'orders', reason: 'calm' }])
    expect(anomalies).toHaveLength(1)

    window({ calls: 100, replays: 300 })
    expect(anomalies).toHaveLength(2)
    expect(anomalies[1]).toMatchObject({ kind: 'replays', scope: 'orders' })
    // The storm windows were not learned: the baseline is still the quiet one.
    expect(anomalies[1]?.baseline).toBeLessThan(0.3)
  })

  it('alerts mid-window, as soon as the count passes the limit', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(2)
    for (let w = 0; w < 40; w++) window(quiet(rnd))
    for (let i = 0; i < 19; i++) detector.observe('orders', 'replay')
    expect(anomalies).toEqual([])
    detector.observe('orders', 'replay')
    expect(anomalies).toHaveLength(1)
    expect(anomalies[0]?.rate).toBe(20 / 10)
  })
})

describe('steady traffic', () => {
  it('never alerts over 500 windows, even with a high replay rate and noise', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(3)
    for (let w = 0; w < 500; w++) {
      window({ calls: between(rnd, 800, 1200), replays: between(rnd, 150, 250), mismatches: between(rnd, 0, 30) })
    }
    expect(anomalies).toEqual([])
  })

  it('never alerts over 500 windows of bursty low traffic', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(4)
    for (let w = 0; w < 500; w++)
      window(rnd() < 0.8 ? {} : { calls: between(rnd, 0, 40), replays: between(rnd, 0, 15) })
    expect(anomalies).toEqual([])
  })

  it('does not take a surge of ordinary traffic for a replay storm', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(5)
    for (let w = 0; w < 60; w++) window({ calls: between(rnd, 780, 820), replays: between(rnd, 190, 210) })
    // Half as much traffic again, as many duplicates in proportion: the count leaves its
    // baseline, the share of replays does not.
    for (let w = 0; w < 5; w++) window({ calls: between(rnd, 1170, 1230), replays: between(rnd, 285, 315) })
    expect(anomalies).toEqual([])
    // Extra replays without extra calls are a storm.
    window({ calls: 800, replays: 1000 })
    expect(anomalies).toMatchObject([{ kind: 'replays' }])
  })

  it('still alerts on replays fed without calls, where their share cannot tell', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(6)
    for (let w = 0; w < 40; w++) window({ replays: between(rnd, 1, 3) })
    window({ replays: 100 })
    expect(anomalies).toMatchObject([{ kind: 'replays' }])
  })
})

describe('mismatches', () => {
  it('a burst raises kind mismatches, and the replays stay quiet', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(7)
    for (let w = 0; w < 40; w++) window({ ...quiet(rnd), mismatches: between(rnd, 0, 1) })
    window({ calls: 100, replays: 2, mismatches: 50 })
    expect(anomalies).toHaveLength(1)
    expect(anomalies[0]).toMatchObject({ kind: 'mismatches', subject: 'scope', scope: 'orders' })
  })

  it('have episodes of their own, apart from the replays', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(8)
    for (let w = 0; w < 40; w++) window(quiet(rnd))
    window({ calls: 100, replays: 300, mismatches: 50 })
    window({ calls: 100, replays: 300, mismatches: 50 })
    expect(anomalies.map((a) => a.kind).sort()).toEqual(['mismatches', 'replays'])
  })
})

describe('the warm-up', () => {
  it('raises no alert while the baseline is learned, even with a storm in window 3', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    const rnd = random(9)
    for (let w = 0; w < 3; w++) window(quiet(rnd))
    window({ calls: 100, replays: 300, mismatches: 300 })
    for (let w = 4; w < 30; w++) window(quiet(rnd))
    expect(anomalies).toEqual([])
  })

  it('alerts from the window after the last warm-up window', () => {
    const { detector, anomalies, window } = rig({ warmup: 10 })
    detectors.push(detector)
    const rnd = random(10)
    for (let w = 0; w < 9; w++) window(quiet(rnd))
    window({ calls: 100, replays: 300 })
    expect(anomalies).toEqual([])
    for (let w = 0; w < 30; w++) window(quiet(rnd))
    window({ calls: 100, replays: 300 })
    expect(anomalies).toHaveLength(1)
  })

  it('counts idle windows as zero-rate windows, however long the idle spell', () => {
    const { detector, anomalies, window, advance } = rig()
    detectors.push(detector)
    window({ calls: 100, replays: 2 })
    advance(86_400_000) // a day: 8640 windows without an event
    const started = performance.now()
    window({ calls: 100, replays: 25 })
    expect(performance.now() - started).toBeLessThan(200)
    expect(anomalies).toMatchObject([{ kind: 'replays', baseline: 0 }])
  })
})

describe('an episode', () => {
  it('resolves on the timer when the subject goes quiet', async () => {
    vi.useFakeTimers()
    const { detector, anomalies, resolved, window, advance } = rig({ window: 1000, warmup: 5, minEvents: 10 })
    detectors.push(detector)
    // rig's windows are WINDOW long; with a 1 s window each spans 10 windows, all learned alike.
    for (let w = 0; w < 5; w++) window({ calls: 10, replays: 1 })
    for (let i = 0; i < 40; i++) detector.observe('orders', 'replay')
    expect(anomalies).toHaveLength(1)
    advance(2000)
    await vi.advanceTimersByTimeAsync(2000)
    expect(resolved).toMatchObject([{ kind: 'replays', scope: 'orders', reason: 'calm' }])
  })

  it('takes a storm that lasts RELEARN_AFTER windows as the new normal, learned afresh', () => {
    const { detector, anomalies, resolved, window } = rig({ warmup: 5 })
    detectors.push(detector)
    const rnd = random(11)
    for (let w = 0; w < 10; w++) window(quiet(rnd))
    for (let w = 0; w < 360; w++) window({ calls: 100, replays: 300 })
    expect(anomalies).toHaveLength(1)
    expect(resolved).toEqual([])
    window({ calls: 100, replays: 300 })
    expect(resolved).toMatchObject([{ kind: 'replays', reason: 'relearned' }])
    for (let w = 0; w < 50; w++) window({ calls: 100, replays: between(rnd, 290, 310) })
    expect(anomalies).toHaveLength(1)
  })

  it('ignores a throwing listener', () => {
    const { detector, anomalies, window } = rig()
    detectors.push(detector)
    detector.on('anomaly', () => {
      throw new Error('listener bug')
    })
    const rnd = random(12)
    for (let w = 0; w < 40; w++) window(quiet(rnd))
    expect(() => window({ calls: 100, replays: 300 })).not.toThrow()
    expect(anomalies).toHaveLength(1)
  })
})

describe('the options and the API', () => {
  it('checks its options and what observe is told', () => {
    expect(() => new AnomalyDetector({ window: 'soon' })).toThrow(RangeError)
    expect(() => new AnomalyDetector({ sensitivity: 0 })).toThrow(/sensitivity/)
    expect(() => new AnomalyDetector({ warmup: 1.5 })).toThrow(/warmup/)
    expect(() => new AnomalyDetector({ minEvents: 0 })).toThrow(/minEvents/)
    expect(() => new AnomalyDetector({ maxSubjects: -1 })).toThrow(/maxSubjects/)
    const detector = new AnomalyDetector()
    detectors.push(detector)
    // @ts-expect-error not a kind
    expect(() => detector.observe('orders', 'replayed')).toThrow(TypeError)
    // @ts-expect-error not a kind either
    expect(() => detector.observe('orders', 'toString')).toThrow(TypeError)
    // @ts-expect-error not a scope
    expect(() => detector.observe(42, 'call')).toThrow(TypeError)
  })

  it('ignores events and refuses watches once closed', () => {
    const { detector } = rig()
    detector.observe('orders', 'call')
    expect(detector.size).toBe(1)
    detector.close()
    expect(detector.size).toBe(0)
    detector.observe('orders', 'call')
    expect(detector.size).toBe(0)
  })
})
