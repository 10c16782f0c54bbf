// The printed outcome: the faults injected, what the consumers saw, and the audit.

import { kept, type RabbitIncidentResult } from './scenario.js'

export function formatRabbitReport(r: RabbitIncidentResult): string {
  const { options: o, faults: f, consumers: c, audit: a } = r
  const rows: [string, number | string][] = [
    ['payment messages published (distinct)', o.messages],
    ['lost confirms, re-published with the same messageId', f.lostConfirms],
    ['consumers killed by SIGKILL while handling (chaos)', f.chaosKills],
    ['consumers killed inside the transaction (self)', f.crashesInTransaction],
    ['consumers killed after the commit, before the ack', f.crashesBeforeAck],
    ['consumer processes started (with restarts)', f.starts],
    ['redeliveries seen (reported, lower bound)', c.redeliveries],
    ['duplicates acknowledged as replays (reported)', c.replayed],
    ['payments applied (ledger lines)', a.paymentsApplied],
    ['payments applied twice', r.doubled],
    ['payments never applied (lost)', r.lost],
    ['subscriptions wrongly extended', a.wronglyExtended],
    ['extra years granted', a.extraYears],
    ['years paid for but not granted', a.missingYears],
    ['dead-lettered', r.deadLettered],
    ['copies left in the queue', r.leftInQueue],
    ['time, first publish to all settled (s)', (r.timings.totalMs / 1000).toFixed(1)],
    ['  of which publishing with confirms (s)', (r.timings.publishMs / 1000).toFixed(1)],
  ]
  const label = Math.max(...rows.map(([name]) => name.length)) + 2
  const lines = [
    `Idem incident on RabbitMQ: ${o.messages} payments over ${o.customers} customers, quorum queue,`,
    o.naive
      ? `${o.consumers} consumer processes (prefetch ${o.prefetch}) WITHOUT Idem, as in the incident (seed ${o.seed})`
      : `${o.consumers} consumer processes (prefetch ${o.prefetch}, concurrency ${o.concurrency}), transaction mode on SQLite (seed ${o.seed})`,
    '',
    ...rows.map(([name, v]) => `${name.padEnd(label)}${String(v).padStart(8)}`),
    '',
    kept(r)
      ? `kept: every subscription extended exactly once per payment, nothing lost, across ${f.chaosKills + f.crashesInTransaction + f.crashesBeforeAck} SIGKILLs and ${f.lostConfirms} publisher retries.`
      : 'BROKEN: a payment was doubled or lost, or a consumer died of an error (see above).',
    ...r.errors.slice(0, 3).map((e) => `unexpected consumer exit: ${e.slice(0, 500)}`),
  ]
  return lines.join('\n')
}
