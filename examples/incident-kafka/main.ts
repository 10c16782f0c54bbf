// npx tsx examples/incident-kafka/main.ts [--messages N --consumers N --partitions N --seed N
//   --chaos-every-ms MS --publish-over-ms MS --crash-after-effect R --crash-before-commit R
//   --lost-ack-rate R --no-rebalance --naive]
// Needs Kafka on 127.0.0.1:9092 (test/services/kafka.sh start, or IDEM_KAFKA_BROKER) and
// PostgreSQL on 127.0.0.1:5432 (IDEM_PG_URL). Exits 1 if any
// payment was doubled or lost. --naive, the incident's consumer without Idem, shows payments
// doubled and exits 0 unless the run itself failed (a record dropped, a consumer crashed of a bug).

import { parseArgs } from 'node:util'
import { formatKafkaReport } from './report.js'
import { DEFAULT_KAFKA_OPTIONS, kept, ranAsPlanned, runKafkaIncident } from './scenario.js'

const { values } = parseArgs({
  options: {
    messages: { type: 'string' },
    consumers: { type: 'string' },
    partitions: { type: 'string' },
    seed: { type: 'string' },
    'chaos-every-ms': { type: 'string' },
    'publish-over-ms': { type: 'string' },
    'crash-after-effect': { type: 'string' },
    'crash-before-commit': { type: 'string' },
    'lost-ack-rate': { type: 'string' },
    'no-rebalance': { type: 'boolean', default: false },
    naive: { type: 'boolean', default: false },
  },
})
const int = (text: string | undefined, fallback: number, min = 1) => {
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text) || Number(text) < min) throw new Error(`expected an integer >= ${min}, got "${text}"`)
  return Number(text)
}

const rate = (text: string | undefined, fallback: number) => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (text.trim() === '' || !(n >= 0 && n < 1)) throw new Error(`expected a rate in [0, 1), got "${text}"`)
  return n
}

const d = DEFAULT_KAFKA_OPTIONS
const result = await runKafkaIncident({
  messages: int(values.messages, d.messages),
  consumers: int(values.consumers, d.consumers),
  partitions: int(values.partitions, d.partitions),
  seed: int(values.seed, d.seed, 0),
  chaosEveryMs: int(values['chaos-every-ms'], d.chaosEveryMs, 0),
  publishOverMs: int(values['publish-over-ms'], d.publishOverMs, 0),
  crashAfterEffect: rate(values['crash-after-effect'], d.crashAfterEffect),
  crashBeforeCommit: rate(values['crash-before-commit'], d.crashBeforeCommit),
  lostAckRate: rate(values['lost-ack-rate'], d.lostAckRate),
  rebalance: !values['no-rebalance'],
  naive: values.naive,
})
console.log(formatKafkaReport(result))
process.exitCode = (values.naive ? ranAsPlanned(result) : kept(result)) ? 0 : 1
