// An in-memory broker for the consumer core's tests: a queue with per-message delivery counts,
// ack / retry-with-delay / dead-letter recording, injected broker failures, and a crash that voids
// every unacknowledged delivery and redelivers its message, as a dropped connection does.

import type { IdempotentConsumer } from '../../../src/consumer/consumer.js'
import type { Delivery } from '../../../src/consumer/types.js'

export interface FakeMessage<P> {
  /** Unique per published copy: a publisher duplicate has the same key but another id. */
  readonly id: number
  readonly key: string
  readonly payload: P
  readonly orderingKey: string | undefined
  deliveryCount: number
}

type Operation = 'ack' | 'retry' | 'deadLetter' | 'extend'

export interface FakeBrokerOptions {
  /** Retry delays are honoured up to this many ms (so a 60 s backoff does not stall a test). Default 0. */
  maxDelayMs?: number
  /** Given to every delivery: the consumer calls `extend()` this often while the handler runs. */
  extendEveryMs?: number
}

export class FakeBroker<P = unknown> {
  readonly acked: FakeMessage<P>[] = []
  readonly deadLettered: { key: string; reason: string; deliveryCount: number }[] = []
  readonly retried: { key: string; delayMs: number; deliveryCount: number }[] = []
  /** `extend()` calls per key. */
  readonly extended = new Map<string, number>()
  /** Calls on a delivery voided by a crash (or settled twice): a real broker rejects them. */
  staleCalls = 0
  readonly #failing: Record<Operation, number> = { ack: 0, retry: 0, deadLetter: 0, extend: 0 }
  readonly #options: FakeBrokerOptions
  #ready: FakeMessage<P>[] = []
  /** Delivered and not yet settled, by message id, with the generation of the delivery. */
  readonly #unacked = new Map<number, { message: FakeMessage<P>; generation: number }>()
  #delayed = 0
  #nextId = 1
  #generation = 0
  #wake: (() => void) | undefined

  constructor(options: FakeBrokerOptions = {}) {
    this.#options = options
  }

  publish(key: string, payload: P, orderingKey?: string): FakeMessage<P> {
    const message: FakeMessage<P> = { id: this.#nextId++, key, payload, orderingKey, deliveryCount: 0 }
    this.#ready.push(message)
    this.#changed()
    return message
  }

  /** The next `times` calls of `operation` throw, as a broker whose channel just closed would. */
  fail(operation: Operation, times = 1): void {
    this.#failing[operation] = times
  }

  /** Deliver up to `max` ready messages. */
  take(max = Number.POSITIVE_INFINITY): Delivery<P>[] {
    return this.#ready.splice(0, max).map((message) => {
      message.deliveryCount++
      this.#unacked.set(message.id, { message, generation: this.#generation })
      return this.#delivery(message, this.#generation)
    })
  }

  /** Void every unacknowledged delivery and queue its message again (a consumer crash or a dropped connection). */
  crash(): void {
    this.#generation++
    const back = [...this.#unacked.values()].map(({ message }) => message)
    this.#unacked.clear()
    this.#ready.unshift(...back)
    this.#changed()
  }

  /** Messages not yet acknowledged or dead-lettered (ready, delivered, or waiting out a retry delay). */
  get outstanding(): number {
    return this.#ready.length + this.#unacked.size + this.#delayed
  }

  /** Pull deliveries into `consumer` as its capacity allows, until every message is acked or dead-lettered. */
  async consume(consumer: IdempotentConsumer<P>, options: { batch?: boolean } = {}): Promise<void> {
    while (this.outstanding > 0) {
      await consumer.whenCapacity()
      const deliveries = this.take(consumer.capacity)
      if (deliveries.length === 0) {
        // Everything may have settled while we waited for capacity.
        if (this.outstanding === 0) break
        await new Promise<void>((resolve) => {
          this.#wake = resolve
        })
        continue
      }
      if (options.batch === true) void consumer.handleBatch(deliveries)
      else for (const delivery of deliveries) void consumer.handle(delivery)
    }
  }

  #delivery(message: FakeMessage<P>, generation: number): Delivery<P> {
    const settle = (operation: Operation, then: () => void) => async () => {
      await Promise.resolve()
      const entry = this.#unacked.get(message.id)
      if (entry === undefined || entry.generation !== generation) {
        this.staleCalls++
        throw new Error(`unknown delivery of message ${message.id} (${operation} after a crash or a second settle)`)
      }
      this.#unacked.delete(message.id)
      if (this.#failing[operation] > 0) {
        this.#failing[operation]--
        // The channel closed under the call: the broker redelivers the message.
        this.#ready.push(message)
        this.#changed()
        throw new Error(`channel closed during ${operation}`)
      }
      then()
      this.#changed()
    }
    return {
      key: message.key,
      payload: message.payload,
      deliveryCount: message.deliveryCount,
      ...(message.orderingKey === undefined ? {} : { orderingKey: message.orderingKey }),
      raw: message,
      ack: settle('ack', () => this.acked.push(message)),
      retry: (delayMs: number) =>
        settle('retry', () => {
          this.retried.push({ key: message.key, delayMs, deliveryCount: message.deliveryCount })
          this.#delayed++
          setTimeout(
            () => {
              this.#delayed--
              this.#ready.push(message)
              this.#changed()
            },
            Math.min(delayMs, this.#options.maxDelayMs ?? 0),
          )
        })(),
      deadLetter: (reason: string) =>
        settle('deadLetter', () =>
          this.deadLettered.push({ key: message.key, reason, deliveryCount: message.deliveryCount }),
        )(),
      extend: async () => {
        this.extended.set(message.key, (this.extended.get(message.key) ?? 0) + 1)
        if (this.#failing.extend > 0) {
          this.#failing.extend--
          throw new Error('extend refused')
        }
      },
      ...(this.#options.extendEveryMs === undefined ? {} : { extendEveryMs: this.#options.extendEveryMs }),
    }
  }

  #changed(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}
