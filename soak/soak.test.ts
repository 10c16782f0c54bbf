// The soak run's growth detector: a flat series passes, a growing one fails, noise within the
// allowance passes, and one odd sample does not decide.

import { describe, expect, it } from 'vitest'
import { detectGrowth, type Point, theilSenSlope } from './growth.js'
import { seededRandom } from './traffic-shape.js'

/** A sample every 2 s over 60 s, as the one-minute run takes them. */
const series = (value: (t: number) => number): Point[] =>
  Array.from({ length: 30 }, (_, i) => ({ t: 2 * (i + 1), value: value(2 * (i + 1)) }))

const MiB = 2 ** 20

describe('detectGrowth', () => {
  it('passes a flat series', () => {
    const result = detectGrowth({ points: series(() => 20 * MiB), from: 30, allowance: 4 * MiB })
    expect(result).toMatchObject({ pass: true, slopePerS: 0, growth: 0, points: 16 })
  })

  it('fails a series that keeps growing, with the growth it measured', () => {
    // 200 KiB/s: a 2 KiB leak per request at 100 requests/s.
    const result = detectGrowth({ points: series((t) => 20 * MiB + t * 200 * 1024), from: 30, allowance: 4 * MiB })
    expect(result.pass).toBe(false)
    expect(result.slopePerS).toBeCloseTo(200 * 1024)
    expect(result.growth).toBeCloseTo(30 * 200 * 1024)
    expect(result.reason).toMatch(/grows/)
  })

  it('passes noise within the allowance', () => {
    const random = seededRandom(7)
    const noisy = series(() => 20 * MiB + (random() - 0.5) * 2 * MiB)
    const result = detectGrowth({ points: noisy, from: 30, allowance: 4 * MiB })
    expect(result.pass).toBe(true)
    expect(Math.abs(result.growth)).toBeLessThan(4 * MiB)
  })

  it('passes a series that grew during the warm-up and then levelled off', () => {
    const levelling = series((t) => 20 * MiB + Math.min(t, 25) * 400 * 1024)
    expect(detectGrowth({ points: levelling, from: 30, allowance: 4 * MiB }).pass).toBe(true)
    // The same series judged from the start is growing: the window is what makes it fair.
    expect(detectGrowth({ points: levelling, from: 0, allowance: 4 * MiB }).pass).toBe(false)
  })

  it('is not moved by one odd sample, where a least-squares line would be', () => {
    const spiked = series((t) => (t === 60 ? 60 * MiB : 20 * MiB))
    expect(detectGrowth({ points: spiked, from: 30, allowance: 4 * MiB }).pass).toBe(true)
  })

  it('fails as inconclusive with too few samples in the window', () => {
    const result = detectGrowth({ points: series(() => 1), from: 55, allowance: 1 })
    expect(result.pass).toBe(false)
    expect(result.reason).toMatch(/inconclusive: 3 samples/)
  })

  it('counts handles the same way: a leaked timer every few seconds fails, a pool opening a socket passes', () => {
    const leaking = series((t) => 50 + Math.floor(t / 3))
    expect(detectGrowth({ points: leaking, from: 30, allowance: 8 }).pass).toBe(false)
    const stepped = series((t) => (t < 40 ? 50 : 52))
    expect(detectGrowth({ points: stepped, from: 30, allowance: 8 }).pass).toBe(true)
  })
})

describe('theilSenSlope', () => {
  it('is the median of the pairwise slopes', () => {
    expect(
      theilSenSlope([
        { t: 0, value: 0 },
        { t: 1, value: 1 },
        { t: 2, value: 2 },
        { t: 3, value: 3 },
        { t: 4, value: 40 },
      ]),
    ).toBe(1)
  })

  it('is 0 without two distinct times', () => {
    expect(theilSenSlope([{ t: 1, value: 5 }])).toBe(0)
    expect(theilSenSlope([])).toBe(0)
  })
})
