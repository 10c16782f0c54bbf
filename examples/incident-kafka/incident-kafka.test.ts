import { describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { formatKafkaReport } from './report.js'
import { kept, ranAsPlanned, runKafkaIncident } from './scenario.js'

// The consumers keep Idem's records and the subscriptions in PostgreSQL, committed together.
const ready =
  (await requireService('Kafka', SERVICES.Kafka.port)) && (await requireService('PostgreSQL', SERVICES.PostgreSQL.port))

if (ready) {
  describe('the incident on Kafka', () => {
    // main.ts runs 10,000 messages; the test runs fewer with more faults per message.
    it('extends every subscription exactly once across publisher retries, SIGKILLed members and rebalances', async () => {
      const result = await runKafkaIncident({
        messages: 1500,
        customers: 200,
        partitions: 6,
        consumers: 3,
        lostAckRate: 0.05,
        crashAfterEffect: 0.002,
        crashBeforeCommit: 0.001,
        chaosEveryMs: 1500,
        publishOverMs: 4000,
        timeoutMs: 60_000,
      })
      const report = formatKafkaReport(result)
      // The faults happened…
      expect(result.faults.lostAcks, report).toBeGreaterThan(0)
      const kills = result.faults.chaosKills + result.faults.crashesAfterEffect + result.faults.crashesBeforeCommit
      expect(kills, report).toBeGreaterThan(0)
      expect(result.faults, report).toMatchObject({ joins: 1, leaves: 1 })
      expect(result.consumers.replayed, report).toBeGreaterThan(0)
      // …and changed nothing.
      expect(result.errors, report).toEqual([])
      expect(result.records, report).toBeGreaterThanOrEqual(result.acknowledged)
      expect(result.doubled, report).toBe(0)
      expect(result.lost, report).toBe(0)
      expect(result.audit, report).toMatchObject({
        paymentsApplied: 1500,
        wronglyExtended: 0,
        extraYears: 0,
        missingYears: 0,
      })
      expect(result.deadLettered, report).toBe(0)
      expect(result.uncommitted, report).toBe(0)
      expect(kept(result)).toBe(true)
    }, 90_000)

    it('the same run without Idem doubles payments: the audit fails', async () => {
      const result = await runKafkaIncident({
        naive: true,
        messages: 400,
        customers: 100,
        partitions: 4,
        consumers: 2,
        lostAckRate: 0.05,
        crashAfterEffect: 0,
        crashBeforeCommit: 0.01,
        chaosEveryMs: 0,
        publishOverMs: 1000,
        rebalance: false,
        timeoutMs: 60_000,
      })
      const report = formatKafkaReport(result)
      expect(result.errors, report).toEqual([])
      expect(result.lost, report).toBe(0)
      // Every lost acknowledgement (two records, one payment) extended a subscription once more.
      expect(result.doubled, report).toBeGreaterThanOrEqual(result.faults.lostAcks)
      expect(result.audit.extraYears, report).toBe(result.audit.paymentsApplied - 400)
      expect(result.doubled, report).toBeGreaterThan(0)
      expect(kept(result)).toBe(false)
      expect(ranAsPlanned(result)).toBe(true)
    }, 60_000)
  })
}
