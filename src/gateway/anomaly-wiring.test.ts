// The gateway's anomaly list: newest first, at most RECENT_ANOMALIES, each marked when its episode ends.

import { afterEach, describe, expect, it } from 'vitest'
import { GatewayAnomalies, RECENT_ANOMALIES } from './anomaly-wiring.js'

const WINDOW = 1000
const opened: GatewayAnomalies[] = []
afterEach(() => {
  for (const anomalies of opened.splice(0)) anomalies.close()
})

function rig() {
  let now = Date.UTC(2026, 0, 1)
  const anomalies = new GatewayAnomalies({ window: WINDOW, warmup: 2, minEvents: 3, now: () => now })
  opened.push(anomalies)
  return { anomalies, next: () => (now += WINDOW) }
}

/** Calm windows for `scope`, then a burst of replays: one alert. */
function storm(anomalies: GatewayAnomalies, next: () => number, scope: string): void {
  for (let w = 0; w < 3; w++) {
    for (let i = 0; i < 5; i++) anomalies.detector.observe(scope, 'call')
    next()
  }
  for (let i = 0; i < 5; i++) anomalies.detector.observe(scope, 'replay')
}

describe('GatewayAnomalies', () => {
  it('keeps the alerts newest first and marks the end of an episode', () => {
    const { anomalies, next } = rig()
    storm(anomalies, next, 'a')
    storm(anomalies, next, 'b')
    expect(anomalies.recent().map((a) => [a.kind, a.scope, a.resolvedAt])).toEqual([
      ['replays', 'b', undefined],
      ['replays', 'a', undefined],
    ])
    next()
    anomalies.detector.observe('b', 'call') // a calm window closes b's episode
    next()
    anomalies.detector.observe('b', 'call')
    const [b, a] = anomalies.recent()
    expect(b).toMatchObject({ scope: 'b', resolvedBy: 'calm', resolvedAt: expect.any(Number) })
    expect(a?.resolvedAt).toBeUndefined()
    // Copies: the caller cannot change the list.
    if (b !== undefined) b.scope = 'changed'
    expect(anomalies.recent()[0]?.scope).toBe('b')
  })

  it(`keeps only the last ${RECENT_ANOMALIES}`, () => {
    const { anomalies, next } = rig()
    for (let i = 0; i < RECENT_ANOMALIES + 5; i++) storm(anomalies, next, `s${i}`)
    const recent = anomalies.recent()
    expect(recent).toHaveLength(RECENT_ANOMALIES)
    expect(recent[0]?.scope).toBe(`s${RECENT_ANOMALIES + 4}`)
    expect(recent.at(-1)?.scope).toBe('s5')
  })
})
