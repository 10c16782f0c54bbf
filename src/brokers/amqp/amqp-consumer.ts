// consumeAmqp: feeds a RabbitMQ queue to the idempotent consumer core. Manual acks, a prefetch
// window, a channel reopened whenever it closes (deliveries of the closed one are void and come
// back, to be deduplicated), and a clean shutdown that stops consuming before the core drains.

import { setTimeout as sleep } from 'node:timers/promises'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { ConsumerOptions } from '../../consumer/types.js'
import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { AmqpDelivery, type ChannelLife, type SettlePolicy } from './amqp-delivery.js'
import type { AmqpConnection, AmqpMessage } from './amqp-driver.js'
import { type AmqpKeySource, decodeJson, deliveryCountOf, keyOf } from './amqp-message.js'
import { ConfirmChannelKeeper } from './amqp-publish.js'
import {
  assertTopology,
  DEFAULT_DELAY_TIERS,
  type DeadLetterTarget,
  defaultDeadLetter,
  delayQueues,
} from './amqp-topology.js'

export interface ConsumeAmqpOptions<P, Tx = unknown> {
  /** An amqplib ChannelModel; a recovering one (`connect(url, { recovery: true })`) also survives connection loss. */
  connection: AmqpConnection
  /** The queue to consume (yours: declared by you, quorum recommended). */
  queue: string
  /** The core, or its options (run mode or transaction mode). */
  consumer: IdempotentConsumer<P, Tx> | ConsumerOptions<P, Tx>
  /** Unacknowledged messages the broker sends ahead. Default: twice the core's concurrency (or batch size). */
  prefetch?: number
  /** Where the idempotency key comes from. Default: `properties.messageId`. */
  key?: AmqpKeySource
  /** Body to payload. Default JSON. A body that does not decode is dead-lettered. */
  decode?: (content: Buffer, message: AmqpMessage) => P
  /**
   * How a retry waits. Default: delay queues (`<queue>.idem.delay.<ms>`, TTL then dead-lettered
   * back); 'requeue': hold the message unacked for the delay, then reject it with requeue.
   */
  retry?: { delayTiers?: readonly number[] } | 'requeue'
  /**
   * Where dead letters go. Default: Idem's copy with the reason in `x-idem-dead-letter-reason`, to
   * `<queue>.idem.dlx` → `<queue>.idem.dlq`; or your exchange; or 'reject' (requeue false, to the
   * queue's own x-dead-letter-exchange, without the reason).
   */
  deadLetter?: { exchange: string; routingKey: string } | 'reject'
  /** Declare Idem's dead-letter exchange and queue and the delay queues. Default true. */
  assertTopology?: boolean
  /**
   * The broker's consumer_timeout (RabbitMQ default 30 min). A message still unsettled at 90% of
   * it is handed back (reject, requeue) before the broker closes the whole channel over it.
   */
  consumerTimeout?: Duration
  /** How long to wait for the confirm of a dead-letter or delay copy. Default 30 s. */
  confirmTimeout?: Duration
  /** Hand deliveries to the core in batches (one store round trip to claim them). */
  batch?: { size: number; maxWaitMs?: number }
  /** Channel errors, reopen failures, messages dead-lettered before reaching the core. */
  onError?: (error: unknown) => void
}

export interface AmqpSubscriptionStats {
  /** Consume channels opened: 1, plus one per reopening after a channel or connection loss. */
  channelsOpened: number
  /** Messages handed back because they neared the consumer timeout unsettled. */
  handedBack: number
  /** Messages dead-lettered before reaching the core (no usable key, body not decodable). */
  rejected: number
}

export interface AmqpSubscription<P = unknown, Tx = unknown> {
  readonly consumer: IdempotentConsumer<P, Tx>
  readonly stats: Readonly<AmqpSubscriptionStats>
  /** Stop consuming, let the core finish or hand back in-flight work, close Idem's channels (not your connection). */
  close(): Promise<void>
}

/** Consume `queue` through the idempotent consumer; resolves once consuming (rejects if the first channel fails). */
export async function consumeAmqp<P = unknown, Tx = unknown>(
  options: ConsumeAmqpOptions<P, Tx>,
): Promise<AmqpSubscription<P, Tx>> {
  const subscription = new Subscription(options)
  await subscription.start()
  return subscription
}

class Subscription<P, Tx> implements AmqpSubscription<P, Tx> {
  readonly consumer: IdempotentConsumer<P, Tx>
  readonly stats: AmqpSubscriptionStats = { channelsOpened: 0, handedBack: 0, rejected: 0 }
  readonly #options: ConsumeAmqpOptions<P, Tx>
  readonly #policy: SettlePolicy
  readonly #prefetch: number
  readonly #pending = new Set<Promise<unknown>>()
  #life: ChannelLife | undefined
  #consumerTag: string | undefined
  /** A reopening in progress, awaited by close(). */
  #reopening: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #batch: AmqpDelivery<P>[] = []
  #batchTimer: NodeJS.Timeout | undefined

  constructor(options: ConsumeAmqpOptions<P, Tx>) {
    this.#options = options
    const given = options.consumer as IdempotentConsumer<P, Tx>
    this.consumer =
      typeof given.handle === 'function' ? given : new IdempotentConsumer(options.consumer as ConsumerOptions<P, Tx>)
    const report = (error: unknown) => options.onError?.(error)
    const timeoutMs = toMs(options.consumerTimeout ?? '30m', 'consumerTimeout')
    const batchSize = options.batch?.size ?? 0
    if (options.batch !== undefined && !(Number.isSafeInteger(batchSize) && batchSize >= 1)) {
      throw new RangeError('batch.size must be a positive integer')
    }
    this.#prefetch = options.prefetch ?? Math.max(2 * this.consumer.capacity, 2 * batchSize, 1)
    const dead = options.deadLetter
    this.#policy = {
      queue: options.queue,
      publisher: new ConfirmChannelKeeper({ connection: options.connection }, report),
      confirmTimeoutMs: toMs(options.confirmTimeout ?? '30s', 'confirmTimeout'),
      deadLetter: dead === undefined ? defaultDeadLetter(options.queue) : dead === 'reject' ? 'reject' : { ...dead },
      delays:
        options.retry === 'requeue'
          ? 'requeue'
          : delayQueues(options.queue, options.retry?.delayTiers ?? DEFAULT_DELAY_TIERS),
      maxHoldMs: Math.floor(timeoutMs / 2),
      handBackAfterMs: Math.floor(timeoutMs * 0.9),
      held: new Set(),
      report,
      onHandBack: () => {
        this.stats.handedBack++
      },
    }
  }

  async start(): Promise<void> {
    try {
      if (this.#options.assertTopology !== false) {
        const { deadLetter, delays, publisher } = this.#policy
        const target: DeadLetterTarget | undefined =
          deadLetter === 'reject' || deadLetter.queue === undefined ? undefined : deadLetter
        await assertTopology(await publisher.channel(), this.#options.queue, target, delays === 'requeue' ? [] : delays)
      }
      await this.#open()
    } catch (error) {
      await this.#policy.publisher.close()
      throw error
    }
  }

  /** Open a consume channel; its closing voids its deliveries and, unless closing, opens the next. */
  async #open(): Promise<void> {
    const channel = await this.#options.connection.createChannel()
    const life: ChannelLife = { channel, open: true }
    channel.on('error', (error: Error) => this.#policy.report(error))
    channel.once('close', () => this.#lost(life))
    try {
      await channel.prefetch(this.#prefetch, false)
      const { consumerTag } = await channel.consume(this.#options.queue, (m) => this.#onMessage(life, m), {
        noAck: false,
      })
      this.#consumerTag = consumerTag
      // Closed while consume was under way: #lost ignored it (not current yet), so fail and retry.
      if (!life.open) throw new Error(`the channel consuming "${this.#options.queue}" closed as it opened`)
    } catch (error) {
      life.open = false
      await channel.close().catch(() => {})
      throw error
    }
    this.#life = life
    this.stats.channelsOpened++
    // Closed while opening (close() was called meanwhile): stop at once.
    if (this.#closing !== undefined) await channel.cancel(this.#consumerTag).catch(() => {})
  }

  #lost(life: ChannelLife): void {
    life.open = false
    if (this.#life !== life) return
    this.#life = undefined
    // Buffered deliveries of the dead channel were requeued by the broker: not worth running.
    this.#batch = this.#batch.filter((d) => d.life !== life)
    if (this.#closing === undefined) {
      this.#reopening ??= this.#reopen().finally(() => {
        this.#reopening = undefined
      })
    }
  }

  async #reopen(): Promise<void> {
    let delayMs = 100
    while (this.#closing === undefined && this.#life === undefined) {
      try {
        await this.#open()
      } catch (error) {
        this.#policy.report(error)
        await sleep(delayMs)
        delayMs = Math.min(delayMs * 2, 5000)
      }
    }
  }

  #onMessage(life: ChannelLife, message: AmqpMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted or moved): start over on a fresh channel.
      this.#policy.report(new Error(`RabbitMQ cancelled the consumer of queue "${this.#options.queue}"`))
      life.channel.close().catch(() => {})
      return
    }
    if (this.#closing !== undefined) {
      // Arrived after we stopped consuming: hand it back untouched.
      if (life.open) this.#track(Promise.resolve().then(() => life.channel.reject(message, true)))
      return
    }
    const deliveryCount = deliveryCountOf(message)
    const rawKey = keyOf(message, this.#options.key)
    let key: string
    try {
      key = validateKey(rawKey)
    } catch (error) {
      this.#reject(message, life, deliveryCount, `no usable idempotency key: ${(error as Error).message}`)
      return
    }
    let payload: P
    try {
      payload = (this.#options.decode ?? (decodeJson as (content: Buffer) => P))(message.content, message)
    } catch (error) {
      this.#reject(message, life, deliveryCount, `payload could not be decoded: ${(error as Error).message}`, key)
      return
    }
    const delivery = new AmqpDelivery<P>(key, payload, deliveryCount, message, life, this.#policy)
    if (this.#options.batch === undefined) this.#track(this.consumer.handle(delivery))
    else this.#addToBatch(delivery)
  }

  /** A message the core cannot take: dead-letter it with the reason, never ack it silently or requeue it forever. */
  #reject(message: AmqpMessage, life: ChannelLife, count: number, reason: string, key = '(none)'): void {
    this.stats.rejected++
    const delivery = new AmqpDelivery<undefined>(key, undefined, count, message, life, this.#policy)
    this.#policy.report(new Error(`dead-lettering a message of queue "${this.#options.queue}": ${reason}`))
    this.#track(delivery.deadLetter(reason).catch((error: unknown) => this.#policy.report(error)))
  }

  #addToBatch(delivery: AmqpDelivery<P>): void {
    const { size, maxWaitMs = 20 } = this.#options.batch as { size: number; maxWaitMs?: number }
    this.#batch.push(delivery)
    if (this.#batch.length >= size) this.#flushBatch()
    else this.#batchTimer ??= setTimeout(() => this.#flushBatch(), maxWaitMs)
  }

  #flushBatch(): void {
    clearTimeout(this.#batchTimer)
    this.#batchTimer = undefined
    if (this.#batch.length === 0) return
    const batch = this.#batch
    this.#batch = []
    this.#track(this.consumer.handleBatch(batch))
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => this.#policy.report(error))
    this.#pending.add(tracked)
    void tracked.finally(() => this.#pending.delete(tracked))
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    // 1. Stop fetching (a channel being reopened cancels its consumer as soon as it is open).
    const life = this.#life
    if (life?.open && this.#consumerTag !== undefined) {
      await life.channel.cancel(this.#consumerTag).catch((error: unknown) => this.#policy.report(error))
    }
    // 2. What was received goes to the core, which finishes or hands back everything it holds.
    this.#flushBatch()
    await this.consumer.close()
    await this.#reopening
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
    // 3. Retries still waiting on a timer are handed back now.
    for (const release of [...this.#policy.held]) release()
    // 4. Closing the channel requeues anything still unacknowledged.
    const current = this.#life
    if (current?.open) await current.channel.close().catch(() => {})
    await this.#policy.publisher.close()
  }
}
