// A producer process for rocketmq-check-back.test.ts: sends one RocketMQ transactional message with
// Idem's transactionalProducer, its local transaction adding 1 to `effects(key)` in a SQLite file,
// and is SIGKILLed by itself at the point the test names:
// - `--die after-local-commit`: the local transaction committed, the broker was not told (the
//   transaction's commit() is where it dies);
// - `--die in-local-transaction`: inside the work, before the local commit.
// It reports `{ "inLocalTransaction": key }` on stdout once its business write is made, before dying.

import { writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { Producer } from 'rocketmq-client-nodejs'
import type { RocketMQProducerLike } from '../../../../src/brokers/rocketmq/rocketmq-producer-driver.js'
import { transactionalProducer, transactionChecker } from '../../../../src/brokers/rocketmq/rocketmq-transactions.js'
import { fromBetterSqlite3 } from '../../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import { quietLogger } from './quiet-logger.test-helper.js'

const { values } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    topic: { type: 'string' },
    tag: { type: 'string' },
    key: { type: 'string' },
    db: { type: 'string' },
    table: { type: 'string' },
    timeout: { type: 'string', default: '3000' },
    die: { type: 'string' },
  },
})
const { endpoints, topic, tag, key, db, table, die } = values
if (
  !endpoints ||
  !topic ||
  !tag ||
  !key ||
  !db ||
  !table ||
  (die !== 'after-local-commit' && die !== 'in-local-transaction')
) {
  throw new Error(
    'usage: transaction-producer.worker.ts --endpoints E --topic T --tag G --key K --db FILE --table T --die after-local-commit|in-local-transaction',
  )
}

// Synchronous, so that the line is out before the SIGKILL.
const report = (line: object) => writeSync(1, `${JSON.stringify(line)}\n`)
const killSelf = (): never => {
  process.kill(process.pid, 'SIGKILL')
  throw new Error('unreachable')
}

const database = new Database(db)
database.pragma('busy_timeout = 10000')
const sqlDb = fromBetterSqlite3(database)
const client = new Producer({
  endpoints,
  namespace: '',
  topic,
  checker: transactionChecker({ db: sqlDb, table }),
  logger: quietLogger,
})
await client.startup()
// The broker's producer, its transaction's commit() replaced by the death the test asked for.
const real = new WeakMap<object, ReturnType<typeof client.beginTransaction>>()
const dying: RocketMQProducerLike = {
  send: (message, transaction) => client.send(message, transaction === undefined ? undefined : real.get(transaction)),
  beginTransaction: () => {
    const transaction = client.beginTransaction()
    const wrapper = {
      commit: async () => (die === 'after-local-commit' ? killSelf() : transaction.commit()),
      rollback: () => transaction.rollback(),
    }
    real.set(wrapper, transaction)
    return wrapper
  },
}
const producer = transactionalProducer({ client: dying, db: sqlDb, table, topic, tag, timeout: Number(values.timeout) })
await producer.send({ id: key, payload: { key } }, async (_tx, sql) => {
  await sql.execute('INSERT INTO effects (key, n) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1', [key])
  report({ inLocalTransaction: key })
  if (die === 'in-local-transaction') killSelf()
})
report({ error: 'the worker outlived its send' })
process.exit(1)
