// Doubles of the driver's SimpleConsumer, MessageView and Producer for the consumer's unit tests:
// they record what the adapter told the broker instead of telling a proxy.

import type {
  DeadLetterProducerLike,
  MessageViewLike,
  SimpleConsumerLike,
} from '../../../../src/brokers/rocketmq/rocketmq-consumer-driver.js'
import type { RocketMQOutgoingLike } from '../../../../src/brokers/rocketmq/rocketmq-producer-driver.js'

export interface FakeView extends MessageViewLike {
  /** What the adapter told the broker about this message, in order: 'ack', 'invisible:<ms>'. */
  readonly calls: string[]
}

let ids = 0

export function fakeView(
  options: {
    body?: string
    properties?: Record<string, string>
    keys?: string[]
    messageId?: string
    deliveryAttempt?: number
    messageGroup?: string
    corrupted?: boolean
  } = {},
): FakeView {
  return {
    calls: [],
    messageId: options.messageId ?? `MSG${++ids}`,
    topic: 'orders',
    body: Buffer.from(options.body ?? '{"n":1}'),
    tag: 'created',
    keys: options.keys ?? [],
    properties: new Map(Object.entries(options.properties ?? {})),
    deliveryAttempt: options.deliveryAttempt ?? 1,
    ...(options.messageGroup === undefined ? {} : { messageGroup: options.messageGroup }),
    ...(options.corrupted === undefined ? {} : { corrupted: options.corrupted }),
  }
}

/**
 * A SimpleConsumer whose receives return the batches given to `deliver` (or fail with the errors
 * given to `fail`), else wait until one comes, as a long poll would.
 */
export class FakeSimpleConsumer implements SimpleConsumerLike<FakeView> {
  readonly receives: { max: number; invisibleMs: number }[] = []
  /** Broker calls of every message, in order: '<messageId>:ack', '<messageId>:invisible:<ms>'. */
  readonly log: string[] = []
  /** Make each ack / changeInvisibleDuration take this long (ms). */
  delayMs = 0
  #pending: ({ batch: FakeView[] } | { error: Error })[] = []
  #waiting: (() => void) | undefined

  deliver(...batch: FakeView[]): void {
    this.#pending.push({ batch })
    this.#waiting?.()
  }

  fail(error: Error): void {
    this.#pending.push({ error })
    this.#waiting?.()
  }

  async receive(max: number, invisibleMs: number): Promise<FakeView[]> {
    this.receives.push({ max, invisibleMs })
    while (this.#pending.length === 0) await new Promise<void>((resolve) => (this.#waiting = resolve))
    this.#waiting = undefined
    const next = this.#pending.shift() as { batch: FakeView[] } | { error: Error }
    if ('error' in next) throw next.error
    return next.batch
  }

  async ack(view: FakeView): Promise<void> {
    await this.#slow()
    view.calls.push('ack')
    this.log.push(`${view.messageId}:ack`)
  }

  async changeInvisibleDuration(view: FakeView, ms: number): Promise<void> {
    await this.#slow()
    view.calls.push(`invisible:${ms}`)
    this.log.push(`${view.messageId}:invisible:${ms}`)
  }

  async #slow(): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
  }
}

/** A Producer that keeps what it was asked to send, or fails while `failing` is set. */
export class FakeProducer implements DeadLetterProducerLike {
  readonly sent: RocketMQOutgoingLike[] = []
  failing: Error | undefined

  async send(message: RocketMQOutgoingLike): Promise<{ messageId: string }> {
    if (this.failing !== undefined) throw this.failing
    this.sent.push(message)
    return { messageId: `DLQ${this.sent.length}` }
  }
}
