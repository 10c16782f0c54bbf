// The baseline: a plain mean and variance over the first windows, an exponentially weighted one
// after, and a long idle spell applied in bounded time.

import { describe, expect, it } from 'vitest'
import { ALPHA, Baseline } from './baseline.js'

describe('Baseline', () => {
  it('is the mean and population variance of the first windows', () => {
    const baseline = new Baseline()
    for (const value of [2, 4, 4, 4, 5, 5, 7, 9]) baseline.learn(value)
    expect(baseline.samples).toBe(8)
    expect(baseline.mean).toBeCloseTo(5, 10)
    expect(baseline.deviation).toBeCloseTo(2, 10)
  })

  it('weighs the newest window by ALPHA once learned', () => {
    const baseline = new Baseline()
    for (let i = 0; i < 100; i++) baseline.learn(10)
    baseline.learn(20)
    expect(baseline.mean).toBeCloseTo(10 + ALPHA * 10, 10)
  })

  it('forgets a level it no longer sees, within about 1/ALPHA windows', () => {
    const baseline = new Baseline()
    for (let i = 0; i < 100; i++) baseline.learn(100)
    for (let i = 0; i < 60; i++) baseline.learn(0)
    expect(baseline.mean).toBeLessThan(100 * (1 - ALPHA) ** 59)
  })

  it('learns idle windows as zeros, in bounded time however many', () => {
    const few = new Baseline()
    const stepped = new Baseline()
    for (const b of [few, stepped]) for (let i = 0; i < 50; i++) b.learn(i % 7)
    few.learnZeros(30)
    for (let i = 0; i < 30; i++) stepped.learn(0)
    expect(few.mean).toBeCloseTo(stepped.mean, 12)
    expect(few.variance).toBeCloseTo(stepped.variance, 12)

    const long = new Baseline()
    long.learn(50)
    const started = performance.now()
    long.learnZeros(1e12)
    expect(performance.now() - started).toBeLessThan(100)
    expect(long).toMatchObject({ samples: 1e12 + 1, mean: 0, variance: 0 })
  })

  it('may start as windows of 0, as if it had learned them', () => {
    const late = new Baseline(40)
    const early = new Baseline()
    early.learnZeros(40)
    late.learn(3)
    early.learn(3)
    expect(late).toMatchObject({ samples: early.samples, mean: early.mean, variance: early.variance })
  })
})
