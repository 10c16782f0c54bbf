// A consumer process for mqtt-crash.test.ts: resumes the MQTT session of `--client-id` and writes
// one row per message into the `effects` table of a SQLite file (the test reads it there).
// --mode tx: transaction mode; with --crash-key K it kills itself (SIGKILL) inside K's transaction,
//   after the business write and before COMMIT.
// --mode run: run mode on a SqliteStore; with --hang-key K it says `in-handler K` on stdout and
//   waits inside K's handler for the parent's SIGKILL, its claim left in progress.
// It says `ready` once subscribed, and closes gracefully on SIGTERM.

import { writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import mqtt from 'mqtt'
import { consumeMqtt } from '../../../../src/brokers/mqtt/mqtt-consumer.js'
import { mqttSessionOptions } from '../../../../src/brokers/mqtt/session-options.js'
import type { ConsumerOptions } from '../../../../src/consumer/types.js'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { fromBetterSqlite3 } from '../../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import { SqliteStore } from '../../../../src/stores/sqlite/sqlite-store.js'

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    url: { type: 'string' },
    topic: { type: 'string' },
    'client-id': { type: 'string' },
    'dead-letter': { type: 'string' },
    mode: { type: 'string', default: 'tx' },
    'crash-key': { type: 'string' },
    'hang-key': { type: 'string' },
    lease: { type: 'string', default: '2s' },
  },
})
const { db: file, url, topic, 'client-id': clientId, 'dead-letter': deadLetterTopic } = values
if (!file || !url || !topic || !clientId || !deadLetterTopic) {
  throw new Error(
    'usage: mqtt-crash.child.ts --db FILE --url URL --topic T --client-id C --dead-letter T [--mode tx|run]',
  )
}

// Synchronous, so that a line written just before a kill still goes out.
const say = (line: string) => writeSync(1, `${line}\n`)

const db = new Database(file)
const store = new SqliteStore({ client: db, busyTimeout: 10_000 })
const idem = new Idempotency({ store, scope: 'mqtt-crash' })
const UPSERT =
  'INSERT INTO effects (id, n, delivery_count) VALUES (?, 1, ?) ' +
  'ON CONFLICT (id) DO UPDATE SET n = n + 1, delivery_count = excluded.delivery_count'

const consumer: ConsumerOptions<unknown, Database.Database> =
  values.mode === 'tx'
    ? {
        idem,
        db: fromBetterSqlite3(db),
        transactionHandler: (tx, _payload, ctx) => {
          tx.prepare(UPSERT).run(ctx.key, ctx.delivery.deliveryCount)
          if (ctx.key === values['crash-key']) {
            say(`crashing ${ctx.key}`)
            process.kill(process.pid, 'SIGKILL')
          }
        },
      }
    : {
        idem,
        lease: values.lease,
        handler: async (_payload, ctx) => {
          if (ctx.key === values['hang-key']) {
            say(`in-handler ${ctx.key}`)
            await new Promise(() => {})
          }
          db.prepare(UPSERT).run(ctx.key, ctx.delivery.deliveryCount)
        },
      }

// Registered first: the messages waiting in the session may all be handled before `ready` is said.
let handle: { close(): Promise<void> } | undefined
let deadLetterClient: mqtt.MqttClient | undefined
process.once('SIGTERM', () => {
  void (async () => {
    await handle?.close()
    await deadLetterClient?.endAsync()
    db.close()
    process.exit(0)
  })()
})

const client = mqtt.connect(url, mqttSessionOptions({ clientId, sessionExpiry: '10m', reconnectPeriod: 200 }))
client.on('error', (error) => say(`mqtt error ${error.message}`))
deadLetterClient = await mqtt.connectAsync(url, { protocolVersion: 5 })
handle = await consumeMqtt({
  client,
  topics: topic,
  ...consumer,
  deadLetter: { topic: deadLetterTopic, client: deadLetterClient, requireSubscriber: false },
})
say('ready')
