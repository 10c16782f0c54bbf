import { describe, expect, it } from 'vitest'
import { runIncident } from './incident.js'

describe('incident demo', () => {
  for (const seed of [1, 7, 42, 2024, 99_991]) {
    it(`seed ${seed}: duplicates over-extend the naive consumer and never the Idem one`, async () => {
      const r = await runIncident({ seed, messages: 200, customers: 50 })
      const { naive, idem, faults } = r

      // Both consumers saw the same deliveries.
      expect(idem.deliveries).toBe(naive.deliveries)
      expect(idem.duplicateDeliveries).toBe(naive.duplicateDeliveries)
      expect(naive.published).toBe(200)

      // The duplicates are real, and each one comes from a counted fault.
      expect(naive.duplicateDeliveries).toBeGreaterThan(0)
      expect(faults.crashesAfterWork).toBeGreaterThan(0)
      expect(faults.publisherRetries).toBeGreaterThan(0)
      expect(naive.duplicateDeliveries).toBe(
        faults.crashesAfterWork + faults.publisherRetries + faults.crashesBeforeWork,
      )

      // Naive: every delivery that reached the work applied it again.
      expect(naive.paymentsApplied).toBe(naive.published + faults.crashesAfterWork + faults.publisherRetries)
      expect(naive.wronglyExtended).toBeGreaterThan(0)
      expect(naive.extraYears).toBe(naive.paymentsApplied - naive.published)
      expect(naive.missingYears).toBe(0)

      // Idem: each payment applied exactly once, duplicates replayed.
      expect(idem.paymentsApplied).toBe(idem.published)
      expect(idem.wronglyExtended).toBe(0)
      expect(idem.extraYears).toBe(0)
      expect(idem.missingYears).toBe(0)
      expect(r.idemRuns.executed).toBe(idem.published)
      expect(r.idemRuns.replayed).toBe(faults.crashesAfterWork + faults.publisherRetries)
    })
  }

  it('without faults there are no duplicates and the naive consumer is correct too', async () => {
    const r = await runIncident({
      seed: 42,
      messages: 200,
      customers: 50,
      faults: { crashAfterWork: 0, publisherRetry: 0, crashBeforeWork: 0 },
    })
    expect(r.faults).toEqual({ crashesAfterWork: 0, publisherRetries: 0, crashesBeforeWork: 0 })
    for (const outcome of [r.naive, r.idem]) {
      expect(outcome.deliveries).toBe(200)
      expect(outcome.duplicateDeliveries).toBe(0)
      expect(outcome.paymentsApplied).toBe(200)
      expect(outcome.wronglyExtended).toBe(0)
      expect(outcome.extraYears).toBe(0)
    }
    expect(r.idemRuns).toEqual({ executed: 200, replayed: 0 })
  })

  it('crashes before the work alone cause duplicates that harm neither consumer', async () => {
    const r = await runIncident({
      seed: 3,
      faults: { crashAfterWork: 0, publisherRetry: 0, crashBeforeWork: 0.2 },
    })
    expect(r.faults.crashesBeforeWork).toBeGreaterThan(0)
    expect(r.naive.duplicateDeliveries).toBe(r.faults.crashesBeforeWork)
    expect(r.naive.wronglyExtended).toBe(0)
    expect(r.idem.wronglyExtended).toBe(0)
  })

  it('the same seed replays the same incident', async () => {
    const [a, b] = await Promise.all([runIncident({ seed: 5 }), runIncident({ seed: 5 })])
    expect(a).toEqual(b)
  })
})
