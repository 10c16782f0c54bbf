import { derivedKey, recordId } from 'idem'
import { describe, expect, it } from 'vitest'
import { SCOPE } from './consumer.js'
import { chargeThroughCrash, MESSAGE } from './scenario.js'

// Each scenario starts three consumer processes under tsx and waits out a 1 s lease.
describe('third-party call through a consumer killed mid-flight', { timeout: 30_000 }, () => {
  it('charges once: the retry after the crash sends the same derived key and the provider replays', async () => {
    const report = await chargeThroughCrash('derived')
    const key = derivedKey(recordId(SCOPE, MESSAGE.id), 'charge')

    // What the provider received: two requests (before and after the crash), one key, one charge.
    expect(report.requests.map((r) => [r.idempotencyKey, r.chargeId, r.replayed])).toEqual([
      [key, 'ch_1', false],
      [key, 'ch_1', true],
    ])
    expect(report.requests.map((r) => JSON.parse(r.body))).toEqual([MESSAGE.body, MESSAGE.body])
    expect(report.charges).toBe(1)

    // The killed consumer left its claim behind; the next one took it over; the third replayed.
    expect(report.afterCrash).toMatchObject({ state: 'in_progress', attempt: 1 })
    expect(report.deliveries).toEqual([
      { outcome: 'killed', providerCalls: 1 },
      { outcome: 'executed', providerCalls: 1, chargeId: 'ch_1', attempt: 2, recovered: true },
      { outcome: 'replayed', providerCalls: 0, chargeId: 'ch_1', attempt: 2, recovered: true },
    ])
  })

  it('charges twice when each attempt sends a fresh key', async () => {
    const report = await chargeThroughCrash('fresh')
    expect(report.requests).toHaveLength(2)
    expect(report.distinctKeys).toBe(2)
    expect(report.requests.map((r) => [r.chargeId, r.replayed])).toEqual([
      ['ch_1', false],
      ['ch_2', false],
    ])
    expect(report.charges).toBe(2)
    // Idem still ran the function once per lapsed claim and replays after that: the damage is downstream.
    expect(report.deliveries.map((d) => d.outcome)).toEqual(['killed', 'executed', 'replayed'])
  })
})
