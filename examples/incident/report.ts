// The printed report: the fault summary, the side-by-side table and what it means.

import type { IncidentResult } from './incident.js'

export function formatReport(result: IncidentResult): string {
  const { faults, naive, idem, idemRuns } = result
  const rows: [string, number, number][] = [
    ['messages published (distinct)', naive.published, idem.published],
    ['deliveries', naive.deliveries, idem.deliveries],
    ['duplicate deliveries', naive.duplicateDeliveries, idem.duplicateDeliveries],
    ['payments applied', naive.paymentsApplied, idem.paymentsApplied],
    ['subscriptions wrongly extended', naive.wronglyExtended, idem.wronglyExtended],
    ['extra years granted', naive.extraYears, idem.extraYears],
    ['years paid for but not granted', naive.missingYears, idem.missingYears],
  ]
  const label = Math.max(...rows.map(([name]) => name.length)) + 2
  const cell = (v: string | number) => String(v).padStart(9)
  const lines = [
    `Idem incident demo: payment messages delivered at least once (seed ${result.options.seed})`,
    `faults injected: ${faults.crashesAfterWork} crashes after work before ack, ${faults.publisherRetries} publisher retries, ${faults.crashesBeforeWork} crashes before work`,
    '',
    `${''.padEnd(label)}${cell('naive')}${cell('idem')}`,
    ...rows.map(([name, a, b]) => `${name.padEnd(label)}${cell(a)}${cell(b)}`),
    '',
    `naive: each redelivery after a crash-after-work and each publisher retry extended a subscription again:`,
    `       ${naive.wronglyExtended} of ${naive.customers} subscriptions are wrong, ${naive.extraYears} year(s) granted that nobody paid for.`,
    `idem:  idem.run({ key: messageId, payload }) executed ${idemRuns.executed} payments and replayed ${idemRuns.replayed} duplicates;`,
    '       every subscription matches what its customer paid for.',
    'note:  the crashes here happen before the work, or after idem.run has stored its outcome but before the ack',
    '       (the case run() protects). A crash inside the work, between the effect and recording it, is what',
    '       transaction mode (idem.transaction) covers: the record and the effect commit together.',
  ]
  return lines.join('\n')
}
