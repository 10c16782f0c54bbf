// The control on RocketMQ: a SimpleConsumer of the same group, no Idem. Each message is charged,
// then acknowledged; a worker killed or frozen between the two, or an ack lost to a cut, has the
// message delivered again once its invisible duration is over, and charged again.

import type { ChaosPayment } from '../payment.js'
import type { WorkerConfig } from '../worker-config.js'
import { INVISIBLE_MS, rocketmqNames, startConsumer } from './clients.js'

export async function consumeRocketMQNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const names = rocketmqNames(config.topic)
  const client = await startConsumer({
    endpoint: `127.0.0.1:${config.brokerPort}`,
    group: names.group,
    topic: names.topic,
  })
  let open = true
  const loop = (async () => {
    while (open) {
      try {
        for (const message of await client.receive(16, INVISIBLE_MS)) {
          await charge((JSON.parse(message.body.toString()) as ChaosPayment).paymentId)
          await client.ack(message).catch(() => {})
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  })()
  return {
    async close() {
      open = false
      await Promise.race([loop, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      await client.shutdown().catch(() => {})
    },
  }
}
