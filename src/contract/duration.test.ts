import { describe, expect, it } from 'vitest'
import { toMs } from './duration.js'

describe('toMs', () => {
  it.each([
    [1500, 1500],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
  ])('reads %s as %d ms', (input, ms) => {
    expect(toMs(input)).toBe(ms)
  })

  it.each([['0'], ['30'], ['thirty seconds'], ['-5s'], ['1w'], [''], ['0s']])(
    'rejects %j with a clear error',
    (input) => {
      expect(() => toMs(input, 'lease')).toThrowError(RangeError)
      expect(() => toMs(input, 'lease')).toThrowError(/lease/)
    },
  )

  it('rejects zero, negative, infinite and non-number values', () => {
    expect(() => toMs(0)).toThrowError(RangeError)
    expect(() => toMs(-1)).toThrowError(RangeError)
    expect(() => toMs(Number.POSITIVE_INFINITY)).toThrowError(RangeError)
    expect(() => toMs({} as unknown as number)).toThrowError(RangeError)
  })
})
