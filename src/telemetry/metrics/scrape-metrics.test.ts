// What a scrape does with a broker's or database's answer: the value, or nothing when the call
// throws, rejects or does not answer in time; never an error that fails the scrape.

import { describe, expect, it } from 'vitest'
import { answerOrNothing } from './scrape-metrics.js'

describe('answerOrNothing', () => {
  it('gives the answer, or undefined for a throw, a rejection or no answer in time', async () => {
    expect(await answerOrNothing(async () => 42)).toBe(42)
    expect(await answerOrNothing(() => 7)).toBe(7)
    expect(
      await answerOrNothing(() => {
        throw new Error('sync')
      }),
    ).toBeUndefined()
    expect(await answerOrNothing(() => Promise.reject(new Error('async')))).toBeUndefined()
    expect(await answerOrNothing(() => new Promise<number>(() => {}), 10)).toBeUndefined()
  })
})
