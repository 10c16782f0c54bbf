// The printed outcome: the faults injected, what the consumers saw, and the audit.

import { type KafkaIncidentResult, kept } from './scenario.js'

export function formatKafkaReport(r: KafkaIncidentResult): string {
  const { options: o, faults: f, consumers: c, audit: a } = r
  const kills = f.chaosKills + f.crashesAfterEffect + f.crashesBeforeCommit
  const rows: [string, number | string][] = [
    ['payment messages published (distinct)', o.messages],
    ['lost acks, re-published with the same id', f.lostAcks],
    ['records written to the topic', r.records],
    ['members killed by SIGKILL while handling (chaos)', f.chaosKills],
    ['members killed after the effect, before its commit', f.crashesAfterEffect],
    ['members killed before an offset commit', f.crashesBeforeCommit],
    ['members that joined / left the running group', `${f.joins} / ${f.leaves}`],
    ['group generation at the end (one per rebalance)', c.generation],
    ['member processes started (with restarts)', f.starts],
    ['duplicates acknowledged as replays (reported)', o.naive ? '-' : c.replayed],
    ['errors recovered from (commits refused in a rebalance)', c.recoveredErrors],
    ['payments applied (ledger lines)', a.paymentsApplied],
    ['payments applied twice or more', r.doubled],
    ['payments never applied (lost)', r.lost],
    ['subscriptions wrongly extended', a.wronglyExtended],
    ['extra years granted', a.extraYears],
    ['years paid for but not granted', a.missingYears],
    ['dead-lettered', r.deadLettered],
    ['records past the committed offsets at the end', r.uncommitted],
    ['time, members started to all committed (s)', (r.timings.totalMs / 1000).toFixed(1)],
    ['  of which publishing, paced (s)', (r.timings.publishMs / 1000).toFixed(1)],
  ]
  const label = Math.max(...rows.map(([name]) => name.length)) + 2
  const lines = [
    `Idem incident on Kafka: ${o.messages} payments over ${o.customers} customers, a topic of ${o.partitions} partitions,`,
    o.naive
      ? `${o.consumers} group members WITHOUT Idem (handled records' offsets committed every 100 ms), as in the incident (seed ${o.seed})`
      : `${o.consumers} group members (consumeKafka, concurrency ${o.concurrency}), Idem in transaction mode on PostgreSQL (record and effect in one transaction) (seed ${o.seed})`,
    '',
    ...rows.map(([name, v]) => `${name.padEnd(label)}${String(v).padStart(9)}`),
    '',
    verdict(r, kills),
    ...(r.records >= r.acknowledged
      ? []
      : [`the topic holds ${r.records} records where ${r.acknowledged} were acknowledged: the producer dropped some`]),
    ...r.errors.slice(0, 3).map((e) => `unexpected consumer exit: ${e.slice(0, 500)}`),
  ]
  return lines.join('\n')
}

function verdict(r: KafkaIncidentResult, kills: number): string {
  const faults = `${kills} SIGKILLs, ${r.faults.joins + r.faults.leaves} members joining or leaving and ${r.faults.lostAcks} publisher retries`
  if (kept(r)) return `kept: every subscription extended exactly once per payment, nothing lost, across ${faults}.`
  if (r.options.naive) {
    return `without Idem: ${r.doubled} payments applied more than once, ${r.audit.extraYears} year(s) granted that nobody paid for, across ${faults}.`
  }
  return 'BROKEN: a payment was doubled or lost, or a consumer died of an error (see above).'
}
