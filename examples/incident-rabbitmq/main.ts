// npx tsx examples/incident-rabbitmq/main.ts [--messages N --consumers N --prefetch N --seed N
//   --chaos-every-ms MS --crash-in-transaction R --crash-before-ack R --lost-confirm-rate R --naive]
// Needs RabbitMQ on 127.0.0.1:5672 (or IDEM_AMQP_URL). Exits 1 if any payment was doubled or lost
// (which --naive, the incident's consumer without Idem, shows happening).

import { parseArgs } from 'node:util'
import { formatRabbitReport } from './report.js'
import { DEFAULT_RABBIT_OPTIONS, kept, runRabbitIncident } from './scenario.js'

const { values } = parseArgs({
  options: {
    messages: { type: 'string' },
    consumers: { type: 'string' },
    prefetch: { type: 'string' },
    seed: { type: 'string' },
    'chaos-every-ms': { type: 'string' },
    'crash-in-transaction': { type: 'string' },
    'crash-before-ack': { type: 'string' },
    'lost-confirm-rate': { type: 'string' },
    naive: { type: 'boolean', default: false },
  },
})
const int = (text: string | undefined, fallback: number) => {
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new Error(`expected a positive integer, got "${text}"`)
  return Number(text)
}

const rate = (text: string | undefined, fallback: number) => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (text.trim() === '' || !(n >= 0 && n < 1)) throw new Error(`expected a rate in [0, 1), got "${text}"`)
  return n
}

const result = await runRabbitIncident({
  messages: int(values.messages, DEFAULT_RABBIT_OPTIONS.messages),
  consumers: int(values.consumers, DEFAULT_RABBIT_OPTIONS.consumers),
  prefetch: int(values.prefetch, DEFAULT_RABBIT_OPTIONS.prefetch),
  seed: int(values.seed, DEFAULT_RABBIT_OPTIONS.seed),
  chaosEveryMs:
    values['chaos-every-ms'] === '0' ? 0 : int(values['chaos-every-ms'], DEFAULT_RABBIT_OPTIONS.chaosEveryMs),
  crashInTransaction: rate(values['crash-in-transaction'], DEFAULT_RABBIT_OPTIONS.crashInTransaction),
  crashBeforeAck: rate(values['crash-before-ack'], DEFAULT_RABBIT_OPTIONS.crashBeforeAck),
  lostConfirmRate: rate(values['lost-confirm-rate'], DEFAULT_RABBIT_OPTIONS.lostConfirmRate),
  naive: values.naive,
})
console.log(formatRabbitReport(result))
process.exitCode = kept(result) ? 0 : 1
