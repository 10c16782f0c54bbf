// The run's side of RabbitMQ: declare a combination's quorum queue, publish its payments with
// publisher confirms straight to the private server (never through the proxy), and count what is
// left in the queue and what Idem dead-lettered.

import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib'
import { DEFAULT_DELAY_TIERS, defaultDeadLetter } from 'idem/amqp'
import type { BrokerSide, BrokerTopic } from '../brokers.js'
import type { ChaosPayment } from '../payment.js'
import type { World } from '../world.js'
import { PrivateRabbitMq } from './server.js'

/**
 * The queues of a combination: the one its payments go to (the topic's name), and those idem/amqp
 * declares beside it (docs/brokers/amqp.md): the dead-letter queue and a delay queue per retry tier.
 */
export function rabbitMqQueues(topic: string): { queue: string; dead: string; delays: string[] } {
  return {
    queue: topic,
    dead: defaultDeadLetter(topic).queue,
    delays: DEFAULT_DELAY_TIERS.map((ms) => `${topic}.idem.delay.${ms}`),
  }
}

/** How long a publish may wait for its confirm before the producer gives up on the connection and retries. */
const CONFIRM_TIMEOUT_MS = 5000
/** rabbitmqctl costs about a second of CPU: the unacknowledged count is asked at most this often. */
const UNACKNOWLEDGED_EVERY_MS = 2000

export async function openRabbitMq(world: World, { topic }: BrokerTopic): Promise<BrokerSide> {
  const broker = await world.get('rabbitmq')
  const server = broker.server
  if (!(server instanceof PrivateRabbitMq)) throw new Error('the rabbitmq server of the world is not a PrivateRabbitMq')
  const names = rabbitMqQueues(topic)
  const link = new DirectLink(server.port)
  // Quorum, as the adapter recommends: it counts redeliveries exactly (maxAttempts), and its
  // messages, durable and persistent, survive the broker's SIGKILL. Declared here, seconds before
  // the first fault: RabbitMQ 3.10.8 brings a quorum queue declared less than about a second
  // before a SIGKILL back empty (its Raft member's registration had not reached the disk, so the
  // node starts a new member; seen with 200 confirmed messages), a loss no consumer could make up for.
  await link.withChannel((channel) =>
    channel.assertQueue(names.queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } }),
  )
  let unacknowledged: { count: number; at: number } | undefined
  return {
    name: 'rabbitmq',
    proxyPort: broker.proxy.port,
    async publish(payment: ChaosPayment) {
      for (;;) {
        try {
          await link.publishConfirmed(names.queue, payment)
          return
        } catch {
          // No confirm (a restart, a closed channel): publish again, as a producer does.
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    },
    async remaining() {
      try {
        // Ready in the queue, or waiting in a delay queue to come back to it.
        let ready = 0
        for (const queue of [names.queue, ...names.delays]) ready += await link.readyCount(queue)
        if (ready > 0) return ready
        // Delivered and unacknowledged: only the broker's Raft state knows, at a cost (server.ts).
        if (unacknowledged === undefined || Date.now() - unacknowledged.at > UNACKNOWLEDGED_EVERY_MS) {
          unacknowledged = { count: await server.unacknowledged(names.queue), at: Date.now() }
        }
        return unacknowledged.count
      } catch {
        return Number.POSITIVE_INFINITY
      }
    },
    // The control declares no dead-letter queue: none there counts as none dead-lettered.
    deadLettered: () => link.readyCount(names.dead),
    close: () => link.close(),
  }
}

/**
 * One connection to the server itself, opened again after it was lost (a restart): a confirm
 * channel for the payments, and a short-lived channel per question (a queue.declare on a queue
 * that does not exist closes its channel).
 */
class DirectLink {
  readonly #port: number
  #opening: Promise<{ connection: ChannelModel; channel: ConfirmChannel }> | undefined

  constructor(port: number) {
    this.#port = port
  }

  #open(): Promise<{ connection: ChannelModel; channel: ConfirmChannel }> {
    if (this.#opening === undefined) {
      const opening = this.#connect(() => {
        if (this.#opening === opening) this.#opening = undefined
      })
      this.#opening = opening
    }
    return this.#opening
  }

  /** `lost` is called once the connection or its confirm channel is gone, or could not be opened. */
  async #connect(lost: () => void): Promise<{ connection: ChannelModel; channel: ConfirmChannel }> {
    let connection: ChannelModel
    try {
      connection = await amqp.connect({ hostname: '127.0.0.1', port: this.#port }, { timeout: 3000 })
    } catch (error) {
      lost()
      throw error
    }
    connection.on('error', () => {})
    connection.once('close', lost)
    try {
      const channel = await connection.createConfirmChannel()
      channel.on('error', () => {})
      channel.once('close', () => {
        lost()
        connection.close().catch(() => {})
      })
      return { connection, channel }
    } catch (error) {
      lost()
      await connection.close().catch(() => {})
      throw error
    }
  }

  /** Resolves once the broker confirmed the persistent message; rejects on a nack, a closed channel or no confirm in time. */
  async publishConfirmed(queue: string, payment: ChaosPayment): Promise<void> {
    const { connection, channel } = await this.#open()
    const confirmed = new Promise<void>((resolve, reject) => {
      channel.sendToQueue(
        queue,
        Buffer.from(JSON.stringify(payment)),
        { persistent: true, messageId: payment.messageId, contentType: 'application/json' },
        (error: unknown) => (error ? reject(error) : resolve()),
      )
    })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no publisher confirm in time')), CONFIRM_TIMEOUT_MS)
    })
    try {
      await Promise.race([confirmed, late])
    } catch (error) {
      // A confirm that may never come: start over on a new connection.
      confirmed.catch(() => {})
      await connection.close().catch(() => {})
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  async withChannel<T>(use: (channel: Channel) => Promise<T>): Promise<T> {
    const { connection } = await this.#open()
    const channel = await connection.createChannel()
    channel.on('error', () => {})
    try {
      return await use(channel)
    } finally {
      await channel.close().catch(() => {})
    }
  }

  /** Messages ready in `queue`; 0 when it does not exist (never declared by this combination's consumers). */
  async readyCount(queue: string): Promise<number> {
    try {
      return await this.withChannel(async (channel) => (await channel.checkQueue(queue)).messageCount)
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return 0
      throw error
    }
  }

  async close(): Promise<void> {
    const opening = this.#opening
    this.#opening = undefined
    if (opening !== undefined) await opening.then(({ connection }) => connection.close()).catch(() => {})
  }
}
