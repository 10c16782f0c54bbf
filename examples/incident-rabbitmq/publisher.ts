// The payment publisher: every message through amqpProducer with its messageId, many in flight at
// once, and injected lost confirms: the broker got the message but the confirm never reaches the
// producer, which times out and publishes the same message again, with the same messageId.

import type { ChannelModel, ConfirmChannel } from 'amqplib'
import { type AmqpConfirmChannel, amqpProducer } from 'idem/amqp'
import type { PaymentMessage } from '../incident/payments.js'
import type { Prng } from '../incident/prng.js'

export interface PublishStats {
  /** Confirms dropped on the way to the producer: each made it publish the message again. */
  lostConfirms: number
  publishMs: number
}

export async function publishPayments(
  connection: ChannelModel,
  queue: string,
  messages: readonly PaymentMessage[],
  rng: Prng,
  lostConfirmRate: number,
  inFlight = 256,
): Promise<PublishStats> {
  const real: ConfirmChannel = await connection.createConfirmChannel()
  const losing = new Set(messages.filter(() => rng.chance(lostConfirmRate)).map((m) => m.messageId))
  let lostConfirms = 0
  // The first confirm of each chosen message is swallowed, as a dropped connection would.
  const lossy = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop !== 'publish') return Reflect.get(target, prop, receiver)
      return (...[exchange, routingKey, content, options, callback]: Parameters<AmqpConfirmChannel['publish']>) => {
        const id = options.messageId as string
        const lose = losing.delete(id)
        if (lose) lostConfirms++
        return target.publish(exchange, routingKey, content, options, lose ? () => {} : callback)
      }
    },
  })
  const producer = amqpProducer({ client: lossy, routingKey: queue, confirmTimeout: 500, retries: 3 })
  const started = performance.now()
  let next = 0
  const worker = async () => {
    for (let i = next++; i < messages.length; i = next++) {
      const message = messages[i] as PaymentMessage
      await producer.publish({ id: message.messageId, payload: message })
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, messages.length) }, worker))
  const publishMs = performance.now() - started
  await producer.close()
  await real.close()
  return { lostConfirms, publishMs }
}
