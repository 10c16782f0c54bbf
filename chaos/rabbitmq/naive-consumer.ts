// The control on RabbitMQ: the same queue, prefetch and connection as the Idem workers, a manual
// ack once the charge is written, and no deduplication. A producer retry is charged twice, and so
// is every message whose ack was lost with its channel (a kill, a cut, a frozen worker, a restart).

import type { Channel } from 'amqplib'
import type { ChaosPayment } from '../payment.js'
import type { WorkerConfig } from '../worker-config.js'
import { connectThroughProxy, prefetchOf } from './worker-connection.js'

export async function consumeRabbitMqNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const connection = await connectThroughProxy(config)
  let open = true
  let current: { channel: Channel; consumerTag: string } | undefined
  const inFlight = new Set<Promise<void>>()

  const consume = async (): Promise<void> => {
    const channel = await connection.createChannel()
    let closed = false
    channel.on('error', () => {})
    channel.once('close', () => {
      closed = true
      if (current?.channel === channel) current = undefined
      // Its unacknowledged messages go back to the queue: consume again on a new channel.
      keepConsuming()
    })
    await channel.prefetch(prefetchOf(config))
    const { consumerTag } = await channel.consume(
      config.topic,
      (message) => {
        if (message === null) {
          // Consumer cancelled by the broker: start over on a fresh channel.
          channel.close().catch(() => {})
          return
        }
        const payment = JSON.parse(message.content.toString()) as ChaosPayment
        const handled = charge(payment.paymentId).then(
          () => settle(() => channel.ack(message)),
          () => settle(() => channel.reject(message, true)),
        )
        inFlight.add(handled)
        void handled.finally(() => inFlight.delete(handled))
      },
      { noAck: false },
    )
    if (closed) throw new Error('the channel closed as it opened')
    current = { channel, consumerTag }
  }

  let reopening: Promise<void> | undefined
  const keepConsuming = () => {
    reopening ??= (async () => {
      while (open && current === undefined) {
        try {
          await consume()
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    })().finally(() => {
      reopening = undefined
    })
  }

  await consume()
  return {
    async close() {
      open = false
      const consuming = current
      if (consuming !== undefined) await consuming.channel.cancel(consuming.consumerTag).catch(() => {})
      await reopening
      await Promise.allSettled([...inFlight])
      await connection.close().catch(() => {})
    },
  }
}

/** An ack or reject on a channel that has closed throws: that message is redelivered anyway. */
function settle(send: () => void): void {
  try {
    send()
  } catch {}
}
