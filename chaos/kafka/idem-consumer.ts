// A worker's consumer behind Idem on Kafka: consumeKafka as a member of the workers' group,
// through the proxy, with a dead-letter producer of its own.

import { appendFileSync } from 'node:fs'
import { consumeKafka } from 'idem/kafka'
import { type BrokerConsumerOptions, closeWithin, modeOptions } from '../broker-consumer.js'
import type { ChaosPayment } from '../payment.js'
import { deadLetterProducer, groupMember, kafkaNames } from './members.js'

/**
 * One member, and a new one whenever the client gives up: a client whose rejoin fails with an error
 * it does not retry (a request timed out while the broker restarted) emits 'error' and stays out of
 * the group, and consumeKafka does not bring it back. An application's supervisor would start the
 * member again; so does this, within the worker process (without a listener, Node would end the
 * process on the 'error' event).
 */
export async function consumeKafkaWithIdem(o: BrokerConsumerOptions): Promise<{ close(): Promise<void> }> {
  let closed = false
  let restarting: Promise<void> | undefined
  const gaveUp = (error: unknown) => {
    note(`the client gave up: ${error instanceof Error ? error.message : String(error)}`)
    if (closed || restarting !== undefined) return
    restarting = (async () => {
      await member.close()
      while (!closed) {
        try {
          member = await startMember(o, gaveUp)
          break
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
      }
      restarting = undefined
    })()
  }
  // A start that fails ends the worker (a fault met at start): the run starts it again.
  let member = await startMember(o, gaveUp)
  return {
    async close() {
      closed = true
      await restarting
      await member.close()
    },
  }
}

/** CHAOS_TRACE: group events and the adapter's errors go to the trace, with the time and the pid. */
function note(line: string): void {
  const trace = process.env.CHAOS_TRACE
  if (trace !== undefined) appendFileSync(trace, `${new Date().toISOString()} ${process.pid} ${line}\n`)
}

async function startMember(
  o: BrokerConsumerOptions,
  gaveUp: (error: unknown) => void,
): Promise<{ close(): Promise<void> }> {
  const { config, common } = o
  const clientId = `chaos-worker-${process.env.CHAOS_WORKER_INDEX ?? '0'}`
  const client = groupMember({ brokerPort: config.brokerPort, group: config.group, clientId })
  const producer = deadLetterProducer({ brokerPort: config.brokerPort, clientId: `${clientId}-dead` })
  client.on('error', gaveUp)
  producer.on('error', (error: unknown) => note(`dead-letter producer: ${String(error)}`))
  const names = kafkaNames(config.topic)
  if (process.env.CHAOS_TRACE !== undefined) {
    for (const event of ['consumer:group:join', 'consumer:group:rebalance', 'consumer:group:leave']) {
      client.on(event, () => note(`${event} generation ${client.generationId} ${JSON.stringify(client.assignments)}`))
    }
    client.on('consumer:heartbeat:error', (e: { error?: Error }) => note(`heartbeat error ${e.error?.message}`))
  }
  const kafkaOptions = {
    client,
    producer,
    topics: [names.topic],
    deadLetterTopic: names.dead,
    // The record key is the payment id: a payment and its producer retry are handled in order,
    // other payments of the partition side by side (up to `concurrency`), as on the other brokers.
    ordering: 'key' as const,
    onError: (error: unknown) => note(`onError ${error instanceof Error ? error.message : String(error)}`),
  }
  let consumer: { close(): Promise<void> }
  try {
    consumer = await consumeKafka<ChaosPayment, unknown>({ ...kafkaOptions, ...common, ...modeOptions(o) })
  } catch (error) {
    await Promise.all([client.close().catch(() => {}), producer.close().catch(() => {})])
    throw error
  }
  return {
    async close() {
      await closeWithin(async () => {
        await consumer.close().catch(() => {})
        await client.close().catch(() => {})
        await producer.close().catch(() => {})
      })
    },
  }
}
