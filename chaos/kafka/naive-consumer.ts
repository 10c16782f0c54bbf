// The control on Kafka: a plain member of the same group, no Idem. Each record is charged, then
// its offset committed; a worker killed or frozen between the two (its partitions moving to another
// member meanwhile), or a commit lost to a cut, has the record read and charged again.

import type { Consumer } from '@platformatic/kafka'
import type { ChaosPayment } from '../payment.js'
import type { WorkerConfig } from '../worker-config.js'
import { groupMember, kafkaNames } from './members.js'

export async function consumeKafkaNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const clientId = `chaos-naive-${process.env.CHAOS_WORKER_INDEX ?? '0'}`
  const topic = kafkaNames(config.topic).topic
  // A client that gives up on the group (its rejoin failed: 'error') is replaced, as in the Idem
  // workers (chaos/kafka/idem-consumer.ts).
  const member = (): Consumer => {
    const client = groupMember({ brokerPort: config.brokerPort, group: config.group, clientId })
    client.on('error', () => {
      if (current === client) gaveUp = true
      void stream?.close().catch(() => {})
    })
    return client
  }
  let current: Consumer | undefined
  let gaveUp = false
  current = member()
  const consume = (client: Consumer) =>
    client.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
  let open = true
  // The first join fails the worker (a fault met at start); later failures open the stream again.
  let stream: Awaited<ReturnType<typeof consume>> | undefined = await consume(current)
  const loop = (async () => {
    while (open) {
      try {
        if (gaveUp) {
          const old = current
          gaveUp = false
          current = member()
          await old?.close().catch(() => {})
        }
        stream ??= await consume(current as Consumer)
        for await (const message of stream) {
          if (!open) break
          await charge((JSON.parse(String(message.value)) as ChaosPayment).paymentId)
          // A commit refused (a rebalance, a cut) is not retried: the next one covers it, or the
          // record is read again by whoever owns the partition next.
          await Promise.resolve(message.commit()).catch(() => {})
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      await stream?.close().catch(() => {})
      stream = undefined
    }
  })()
  return {
    async close() {
      open = false
      await stream?.close().catch(() => {})
      await Promise.race([loop, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      await current?.close().catch(() => {})
    },
  }
}
