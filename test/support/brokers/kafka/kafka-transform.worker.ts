// A kafkaTransform process for the crash test: it reads --input as a member of --group and writes,
// for each input `{ n }`, one output `{ n, square }` to --output, with the producer's
// transactionalId --txid. With --kill-on-commit N it SIGKILLs itself at its Nth commit, once that
// transaction's outputs are sent and its offsets added. SIGTERM closes it; its counters go to stdout
// as one JSON line on the way out.

import { parseArgs } from 'node:util'
import { kafkaTransform } from '../../../../src/brokers/kafka/kafka-transform.js'
import { groupMember, KAFKA } from './kafka.test-helper.js'
import { transactionalClient, withCommitFault } from './kafka-transform.test-helper.js'

const { values } = parseArgs({
  options: {
    input: { type: 'string' },
    output: { type: 'string' },
    group: { type: 'string' },
    txid: { type: 'string' },
    broker: { type: 'string', default: KAFKA },
    'batch-size': { type: 'string', default: '5' },
    'kill-on-commit': { type: 'string' },
  },
})
const { input, output, group, txid, broker } = values
if (input === undefined || output === undefined || group === undefined || txid === undefined) {
  throw new Error('usage: kafka-transform.worker.ts --input T --output T --group G --txid ID [--kill-on-commit N]')
}
const killOn = values['kill-on-commit'] === undefined ? undefined : Number(values['kill-on-commit'])

// A short session: the successor's join waits for the killed member's session to expire.
const consumer = groupMember(group, broker, { sessionTimeout: 2000, heartbeatInterval: 300, rebalanceTimeout: 4000 })
const real = transactionalClient(txid, broker)
const producer = withCommitFault(real, (n) => (n === killOn ? 'kill' : undefined))

const transform = await kafkaTransform<{ n: number }>({
  client: consumer,
  producer,
  topics: [input],
  topic: output,
  batchSize: Number(values['batch-size']),
  transform: ({ n }) => [{ payload: { n, square: n * n } }],
  onError: (error) => console.error('transform error:', error),
})
console.error(`worker ${txid} consuming`)

process.once('SIGTERM', async () => {
  await transform.close()
  await consumer.close()
  await real.close()
  console.log(JSON.stringify(transform.stats))
  process.exit(0)
})
