import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../testing/manual-clock.js'
import { RotatingBloomFilter } from './bloom-filter.js'

/** Ids shaped like real keys (a scope, a counter), in disjoint sets by prefix. */
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}:order-${i}`)

describe('RotatingBloomFilter', () => {
  it('has no false negatives: every id added in the current generation is reported', () => {
    const filter = new RotatingBloomFilter({ expectedItems: 100_000, falsePositiveRate: 0.01 })
    const added = ids('a', 100_000)
    for (const id of added) filter.add(id)
    expect(added.filter((id) => !filter.mightContain(id))).toEqual([])
  })

  it.each([0.01, 0.001])('keeps the false-positive rate at or under %s with both generations full', (rate) => {
    const filter = new RotatingBloomFilter({ expectedItems: 100_000, falsePositiveRate: rate })
    // Two generations' worth, so the lookup asks two full filters.
    for (const id of ids('seen', 200_000)) filter.add(id)
    const probes = ids('never', 100_000)
    const falsePositives = probes.filter((id) => filter.mightContain(id)).length
    const observed = falsePositives / probes.length
    // The sizing targets `rate` for the two together; 1.3x allows for sampling noise (the count
    // is binomial: at 0.001 and 100 000 probes, about 100 ± 10).
    expect(observed).toBeLessThanOrEqual(rate * 1.3)
    expect(observed).toBeGreaterThan(0) // a filter that says "no" to everything would pass the first check
  })

  it('sizes itself from the items and the rate: about 11 bits per item per generation at 1%', () => {
    const filter = new RotatingBloomFilter({ expectedItems: 1_000_000, falsePositiveRate: 0.01 })
    // m = -n ln(0.005) / ln(2)^2 = 11.03 bits per item at half the rate; k = 7.6 -> 8.
    expect(filter.bits / 1_000_000).toBeCloseTo(11.03, 1)
    expect(filter.hashes).toBe(8)
    expect(filter.bytes).toBe((2 * filter.bits) / 8) // two generations: bounded whatever passes through
  })

  it('forgets: an id is gone once two generations have been filled after it', () => {
    const filter = new RotatingBloomFilter({ expectedItems: 1000, falsePositiveRate: 0.001 })
    filter.add('old')
    for (const id of ids('fill', 999)) filter.add(id) // the first generation is now full
    for (const id of ids('next', 1000)) filter.add(id) // the second: 'old' is in the previous one
    expect(filter.mightContain('old')).toBe(true)
    filter.add('one-more') // the first generation is cleared and reused
    expect(filter.mightContain('old')).toBe(false)
    expect(filter.mightContain('one-more')).toBe(true)
  })

  it('forgets by age with forgetAfter: after one to two periods', () => {
    const clock = new ManualClock()
    const filter = new RotatingBloomFilter({
      expectedItems: 1000,
      falsePositiveRate: 0.01,
      forgetAfter: '10s',
      now: clock.now,
    })
    filter.add('a')
    clock.advance(10_000)
    expect(filter.mightContain('a')).toBe(true) // rotated once: in the previous generation
    clock.advance(9_999)
    expect(filter.mightContain('a')).toBe(true)
    clock.advance(1)
    expect(filter.mightContain('a')).toBe(false)
  })

  it('refuses options it cannot honour', () => {
    const make = (options: object) => () => new RotatingBloomFilter(options as never)
    expect(make({ expectedItems: 0, falsePositiveRate: 0.01 })).toThrow(/expectedItems must be a positive integer/)
    expect(make({ expectedItems: 10, falsePositiveRate: 0 })).toThrow(/falsePositiveRate must be a number in/)
    expect(make({ expectedItems: 10, falsePositiveRate: 0.9 })).toThrow(RangeError)
    expect(make({ expectedItems: 10, falsePositiveRate: '1%' })).toThrow(RangeError)
    expect(make({ expectedItems: 1e9, falsePositiveRate: 1e-9 })).toThrow(/more than/)
    expect(make({ expectedItems: 10, falsePositiveRate: 0.01, forgetAfter: 'soon' })).toThrow(/forgetAfter/)
  })
})
