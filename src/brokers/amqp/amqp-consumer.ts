// consumeAmqp: feeds a RabbitMQ queue to the idempotent consumer core. Manual acks, a prefetch
// window, a channel reopened whenever it closes (deliveries of the closed one are void and come
// back, to be deduplicated), and a clean shutdown that stops consuming before the core drains.

import { setTimeout as sleep } from 'node:timers/promises'
import type { IdempotentConsumer } from '../../consumer/consumer.js'
import { decodeJson } from '../../consumer/decode-json.js'
import { type ConsumerHandle, consumerHandle, resolveConsumer } from '../../consumer/handle.js'
import { clientOption, renamedDuration } from '../../consumer/renamed.js'
import { positiveInteger, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { AckWindow, type Tracked, Wire } from './amqp-acks.js'
import type { AmqpConsumerStats, ConsumeAmqpOptions } from './amqp-consumer-options.js'
import { AmqpDelivery, type ChannelLife, type SettlePolicy } from './amqp-delivery.js'
import type { AmqpChannel, AmqpConnection, AmqpMessage } from './amqp-driver.js'
import { deliveryCountOf, keyOf } from './amqp-message.js'
import { ConfirmChannelKeeper } from './amqp-publish.js'
import {
  assertTopology,
  DEFAULT_DELAY_TIERS,
  type DeadLetterTarget,
  defaultDeadLetter,
  delayQueues,
} from './amqp-topology.js'

export type {
  AmqpConsumerStats,
  AmqpSourceOptions,
  AmqpSubscription,
  AmqpSubscriptionStats,
  ConsumeAmqpOptions,
} from './amqp-consumer-options.js'

import { messageOf } from '../../errors.js'

const DEFAULT_BATCH_WAIT_MS = 20

/**
 * Consume `queue` through the idempotent consumer: per message, claim, run the handler, store the
 * outcome, and only then ack. Resolves once consuming (rejects if the first channel fails).
 *
 * @example
 * ```ts
 * import amqp from 'amqplib'
 * import { consumeAmqp } from 'idem/amqp'
 *
 * const connection = await amqp.connect('amqp://localhost')
 * const orders = await consumeAmqp<Order>({
 *   client: connection,
 *   queue: 'orders',
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 *   on: { settled: (result) => console.log(result.key, result.outcome) },
 * })
 * // on shutdown:
 * await orders.close()
 * ```
 */
export async function consumeAmqp<P = unknown, Tx = unknown>(
  options: ConsumeAmqpOptions<P, Tx>,
): Promise<ConsumerHandle<P, Tx, AmqpConsumerStats>> {
  const subscription = new Subscription(options)
  await subscription.start()
  return consumerHandle(
    subscription.consumer,
    subscription.stats,
    { close: () => subscription.close(), done: subscription.done },
    { lag: () => subscription.lag() },
  )
}

class Subscription<P, Tx> {
  readonly consumer: IdempotentConsumer<P, Tx>
  readonly stats: AmqpConsumerStats = { channelsOpened: 0, handedBack: 0, rejected: 0 }
  readonly #options: ConsumeAmqpOptions<P, Tx>
  readonly #connection: AmqpConnection
  readonly #decode: (content: Buffer, message: AmqpMessage) => P
  readonly #batchSize: number
  readonly #batchWaitMs: number
  #stopped!: () => void
  /** Resolves once close() finished. */
  readonly done = new Promise<void>((resolve) => {
    this.#stopped = resolve
  })
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
  /** The channel `lag()` asks on, opened on first use, and again after it closed. */
  #lagChannel: Promise<AmqpChannel> | undefined

  constructor(options: ConsumeAmqpOptions<P, Tx>) {
    this.#options = options
    this.#connection = clientOption(
      options,
      'connection',
      'consumeAmqp',
      'an amqplib connection (await amqp.connect(url))',
    )
    if (typeof options.queue !== 'string' || options.queue === '') {
      throw new TypeError('consumeAmqp needs queue: the name of the queue to consume')
    }
    const { batch } = options
    this.#batchSize = batch === undefined ? 0 : positiveInteger(batch.size, 'batch.size')
    this.#batchWaitMs =
      batch === undefined
        ? 0
        : renamedDuration(batch, 'maxWait', 'maxWaitMs', 'consumeAmqp', 'batch.', DEFAULT_BATCH_WAIT_MS)
    if (options.prefetch !== undefined) positiveInteger(options.prefetch, 'prefetch')
    this.consumer = resolveConsumer(options, 'consumeAmqp').core
    this.#decode = options.decode ?? (decodeJson as (content: Buffer) => P)
    const report = (error: unknown) => options.onError?.(error)
    const timeoutMs = toMs(options.consumerTimeout ?? '30m', 'consumerTimeout')
    this.#prefetch = options.prefetch ?? Math.max(2 * this.consumer.capacity, 2 * this.#batchSize, 1)
    const dead = options.deadLetter
    this.#policy = {
      queue: options.queue,
      publisher: new ConfirmChannelKeeper({ connection: this.#connection }, report),
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
    const channel = await this.#connection.createChannel()
    const life: ChannelLife = { channel, open: true, acks: new AckWindow(channel, () => life.open) }
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
      // Arrived after we stopped consuming: hand it back untouched. Tracked meanwhile, so that no
      // ack with `multiple` reaches past it before the reject left.
      const handedBack: Tracked = { key: '(closing)', raw: message, wire: Wire.OPEN }
      life.acks.track(handedBack)
      if (life.open) {
        this.#track(
          Promise.resolve().then(() => {
            life.channel.reject(message, true)
            handedBack.wire = Wire.SENT
          }),
        )
      }
      return
    }
    const deliveryCount = deliveryCountOf(message)
    let key: string
    try {
      // Inside the try: a key function of the caller's that throws dead-letters the message too.
      key = validateKey(keyOf(message, this.#options.key))
    } catch (error) {
      this.#reject(message, life, deliveryCount, `no usable idempotency key: ${messageOf(error)}`)
      return
    }
    let payload: P
    try {
      payload = this.#decode(message.content, message)
    } catch (error) {
      this.#reject(message, life, deliveryCount, `payload could not be decoded: ${messageOf(error)}`, key)
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
    this.#batch.push(delivery)
    if (this.#batch.length >= this.#batchSize) this.#flushBatch()
    else this.#batchTimer ??= setTimeout(() => this.#flushBatch(), this.#batchWaitMs)
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

  /**
   * The queue's ready messages, by the broker's count now (`checkQueue`: queue.declare passive):
   * neither the messages delivered and not yet acknowledged (here or to other consumers) nor those
   * waiting in the delay queues. Asked on a channel of its own, so that a failing check (the queue
   * was deleted: a 404 closes the channel) never touches the consuming channel; it rejects with the
   * broker's error. Undefined once closed.
   */
  async lag(): Promise<number | undefined> {
    if (this.#closing !== undefined) return undefined
    this.#lagChannel ??= this.#openLagChannel()
    const opening = this.#lagChannel
    let channel: AmqpChannel
    try {
      channel = await opening
    } catch (error) {
      if (this.#lagChannel === opening) this.#lagChannel = undefined
      throw error
    }
    const { messageCount } = await channel.checkQueue(this.#options.queue)
    return messageCount
  }

  #openLagChannel(): Promise<AmqpChannel> {
    const opening: Promise<AmqpChannel> = this.#connection.createChannel().then((channel) => {
      // A failed check rejects with the broker's error; the channel's 'error' event must not crash the process.
      channel.on('error', () => {})
      channel.once('close', () => {
        if (this.#lagChannel === opening) this.#lagChannel = undefined
      })
      return channel
    })
    return opening
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown().finally(() => this.#stopped())
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
    const lagChannel = this.#lagChannel
    this.#lagChannel = undefined
    if (lagChannel !== undefined) await lagChannel.then((channel) => channel.close()).catch(() => {})
  }
}
