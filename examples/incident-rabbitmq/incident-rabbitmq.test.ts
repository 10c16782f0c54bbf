import { describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import { formatRabbitReport } from './report.js'
import { kept, runRabbitIncident } from './scenario.js'

if (await requireService('RabbitMQ', 5672)) {
  describe('the incident on RabbitMQ', () => {
    // main.ts runs 10,000 messages; the test runs fewer with more faults per message.
    it('extends every subscription exactly once across lost confirms and SIGKILLed consumers', async () => {
      const result = await runRabbitIncident({
        messages: 1500,
        customers: 200,
        consumers: 3,
        lostConfirmRate: 0.05,
        crashInTransaction: 0.003,
        crashBeforeAck: 0.003,
        chaosEveryMs: 700,
        timeoutMs: 60_000,
      })
      const report = formatRabbitReport(result)
      // The faults happened…
      expect(result.faults.lostConfirms, report).toBeGreaterThan(0)
      const kills = result.faults.chaosKills + result.faults.crashesInTransaction + result.faults.crashesBeforeAck
      expect(kills, report).toBeGreaterThan(0)
      expect(result.consumers.replayed, report).toBeGreaterThan(0)
      // …and changed nothing.
      expect(result.errors, report).toEqual([])
      expect(result.doubled, report).toBe(0)
      expect(result.lost, report).toBe(0)
      expect(result.audit, report).toMatchObject({
        paymentsApplied: 1500,
        wronglyExtended: 0,
        extraYears: 0,
        missingYears: 0,
      })
      expect(result.deadLettered, report).toBe(0)
      expect(kept(result)).toBe(true)
    }, 90_000)

    it('the same run without Idem doubles payments: the audit can fail', async () => {
      const result = await runRabbitIncident({
        naive: true,
        messages: 400,
        customers: 100,
        consumers: 2,
        lostConfirmRate: 0.05,
        crashInTransaction: 0,
        crashBeforeAck: 0.01,
        chaosEveryMs: 0,
        timeoutMs: 60_000,
      })
      const report = formatRabbitReport(result)
      expect(result.errors, report).toEqual([])
      expect(result.lost, report).toBe(0)
      // Every lost confirm and every crash after the commit extended a subscription once more.
      expect(result.doubled, report).toBeGreaterThanOrEqual(result.faults.lostConfirms)
      expect(result.audit.extraYears, report).toBe(result.audit.paymentsApplied - 400)
      expect(result.doubled, report).toBeGreaterThan(0)
      expect(kept(result)).toBe(false)
    }, 60_000)
  })
}
