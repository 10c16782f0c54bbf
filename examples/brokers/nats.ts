// NATS JetStream with Idem: a producer that always sets Nats-Msg-Id and waits for the PubAck, and
// an idempotent durable pull consumer. A payment published three times (a retry right away, which
// the stream's duplicate window drops, and a late one after the window, which the stream stores
// again) is charged once.
// Run it: npx tsx examples/brokers/nats.ts (needs nats-server -js on 127.0.0.1:4222).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Idempotency } from 'idem'
import { consumeJetStream, jetStreamProducer } from 'idem/nats'
import { newMessageId } from 'idem/producer'
import { SqliteStore } from 'idem/sqlite'
import { AckPolicy, connect, type NatsConnection, nanos } from 'nats'

export interface Payment {
  orderId: string
  amountCents: number
}

export async function payOnce(nc: NatsConnection, stream: string, idemFile: string) {
  // Set up once, usually by deployment: the stream (a short duplicate window for the demo; the
  // default is 2 minutes), a dead-letter stream, and a durable pull consumer with explicit acks
  // whose max_deliver leaves the decision to give up to Idem.
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({ name: stream, subjects: [`${stream}.created`], duplicate_window: nanos(1000) })
  await jsm.streams.add({ name: `${stream}_DEAD`, subjects: [`${stream}.dead`] })
  await jsm.consumers.add(stream, {
    durable_name: 'billing',
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(30_000), // working() is sent every 10 s while a handler runs
    max_deliver: -1,
  })

  const store = new SqliteStore({ client: idemFile })
  store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'payments' })
  const charged: string[] = []
  // Listeners given as `on` are attached before the first delivery: none is missed.
  let settledCount = 0
  let bothSettled!: () => void
  const settled = new Promise<void>((resolve) => {
    bothSettled = resolve
  })
  const subscription = await consumeJetStream<Payment>({
    client: nc,
    stream,
    durable: 'billing',
    deadLetterSubject: `${stream}.dead`, // failures after maxAttempts land here with their reason
    idem,
    handler: async (payment, ctx) => {
      charged.push(payment.orderId) // your side effect; pass ctx.derivedKey('charge') to a payment API
      return { charged: payment.amountCents, key: ctx.key }
    },
    on: {
      settled: () => {
        if (++settledCount === 2) bothSettled()
      },
    },
  })

  // The id is made once per message and reused by every retry: that is what makes a retry recognisable.
  const producer = jetStreamProducer({ client: nc, subject: `${stream}.created` })
  const message = { id: newMessageId(), payload: { orderId: 'order-1', amountCents: 4200 } }
  const receipts = [await producer.send(message), await producer.send(message)] // a retry: duplicate: true
  await sleep(1100)
  receipts.push(await producer.send(message)) // a late retry, after the window: stored again

  await settled
  await subscription.close()
  await store.close()
  return { messageId: message.id, duplicates: receipts.map((r) => r.duplicate), charged }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const nc = await connect({ servers: '127.0.0.1:4222' })
  const dir = mkdtempSync(join(tmpdir(), 'idem-nats-'))
  try {
    console.log(await payOnce(nc, 'PAYMENTS', join(dir, 'idem.db')))
  } finally {
    rmSync(dir, { recursive: true, force: true })
    const jsm = await nc.jetstreamManager()
    await jsm.streams.delete('PAYMENTS')
    await jsm.streams.delete('PAYMENTS_DEAD')
    await nc.close()
  }
}
