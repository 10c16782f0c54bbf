// The receive loop: long-poll the simple consumer for as many messages as the core has room for,
// hand what one receive returned to the core as one batch, and repeat. Receives are sized by the
// core's capacity, so a message never waits in this process while its invisible duration runs out
// unextended.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Delivery, DeliveryResult } from '../../consumer/types.js'
import type { MessageViewLike, SimpleConsumerLike } from './rocketmq-consumer-driver.js'
import type { DeadLetterFn } from './rocketmq-dead-letter.js'
import type { Translation } from './rocketmq-delivery.js'

/** The part of the consumer core the loop drives (an IdempotentConsumer). */
export interface ConsumerCore<P> {
  handle(delivery: Delivery<P>): Promise<DeliveryResult>
  handleBatch(deliveries: readonly Delivery<P>[]): Promise<DeliveryResult[]>
  readonly capacity: number
  readonly inFlight: number
  /** Resolves once `capacity >= atLeast`. */
  whenCapacity(atLeast: number): Promise<void>
}

/** Counters the loop keeps up to date. */
export interface ReceiveStats {
  receives: number
  receiveFailures: number
  rejected: number
}

export interface ReceiveLoopOptions<P, M extends MessageViewLike> {
  translate(message: M): Translation<P>
  deadLetter: DeadLetterFn<M>
  /** Hand messages of one receive to `handleBatch` (one claim round trip), else one by one. */
  batch: boolean
  maxBatch: number
  /** The invisible duration asked on each receive, in ms. */
  invisibleMs: number
  onError(error: unknown): void
}

const MAX_BACKOFF_MS = 5000

export class ReceiveLoop<P, M extends MessageViewLike> {
  readonly done: Promise<void>
  readonly #consumer: SimpleConsumerLike<M>
  readonly #core: ConsumerCore<P>
  readonly #options: ReceiveLoopOptions<P, M>
  readonly #stats: ReceiveStats
  readonly #stop = new AbortController()
  readonly #stopped: Promise<void>
  /** Dead-lettering of rejected messages under way: stop() waits for them. */
  readonly #rejecting = new Set<Promise<void>>()

  constructor(
    consumer: SimpleConsumerLike<M>,
    core: ConsumerCore<P>,
    stats: ReceiveStats,
    options: ReceiveLoopOptions<P, M>,
  ) {
    this.#consumer = consumer
    this.#core = core
    this.#stats = stats
    this.#options = options
    this.#stopped = new Promise((resolve) => this.#stop.signal.addEventListener('abort', () => resolve()))
    this.done = this.#run()
  }

  /**
   * Stop receiving; resolves once every message received was handed to the core (or rejected).
   * A long poll under way cannot be cancelled through the driver: it is not waited for, and what
   * it still returns is handed back at once (changeInvisibleDuration 0).
   */
  async stop(): Promise<void> {
    this.#stop.abort()
    await this.done
    await Promise.all(this.#rejecting)
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#stop.signal.aborted) {
      await this.#room()
      if (this.#stop.signal.aborted) break
      const max = Math.max(1, Math.min(this.#core.capacity, this.#options.maxBatch))
      this.#stats.receives++
      const receiving = this.#receive(max)
      const result = await Promise.race([receiving, this.#stopped.then(() => undefined)])
      if (result === undefined) {
        void receiving.then((late) => {
          if (late.ok) for (const message of late.messages) this.#handBack(message)
        })
        break
      }
      if (!result.ok) {
        this.#stats.receiveFailures++
        // Receives fail while the proxy is unreachable, the topic has no route yet, or the client
        // was shut down: report, back off, and receive again until close().
        this.#options.onError(result.error)
        await sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures++), undefined, { signal: this.#stop.signal }).catch(
          () => {},
        )
        continue
      }
      failures = 0
      this.#accept(result.messages)
    }
  }

  #receive(max: number): Promise<{ ok: true; messages: M[] } | { ok: false; error: unknown }> {
    try {
      return this.#consumer.receive(max, this.#options.invisibleMs).then(
        (messages) => ({ ok: true, messages }),
        (error: unknown) => ({ ok: false, error }),
      )
    } catch (error) {
      return Promise.resolve({ ok: false, error })
    }
  }

  /**
   * Wait until a worthwhile receive fits: half the core's slots (at most maxBatch) free, or nothing
   * in flight. Receiving whenever one slot frees up would mean a round trip per message under load.
   */
  async #room(): Promise<void> {
    const core = this.#core
    const want = Math.max(1, Math.min(this.#options.maxBatch, Math.ceil((core.capacity + core.inFlight) / 2)))
    // capacity + inFlight is the concurrency, all of it free once nothing is in flight: `want` always comes.
    if (core.capacity < want) await Promise.race([core.whenCapacity(want), this.#stopped])
  }

  #accept(messages: readonly M[]): void {
    const deliveries: Delivery<P>[] = []
    for (const message of messages) {
      const translated = this.#options.translate(message)
      if (translated.ok) {
        deliveries.push(translated.delivery)
        continue
      }
      // No key or no payload: nothing the core could claim. It is poison, never handed back.
      this.#stats.rejected++
      const rejecting = this.#options
        .deadLetter(message, translated.copyKey, translated.reason)
        .catch((e: unknown) => this.#options.onError(e))
        .finally(() => this.#rejecting.delete(rejecting))
      this.#rejecting.add(rejecting)
    }
    if (deliveries.length === 0) return
    // The core settles each delivery (ack, retry or dead-letter) itself and never rejects.
    if (this.#options.batch) void this.#core.handleBatch(deliveries)
    else for (const delivery of deliveries) void this.#core.handle(delivery)
  }

  /** Received after stop(): hand it straight back rather than start work during shutdown. */
  #handBack(message: M): void {
    Promise.resolve()
      .then(() => this.#consumer.changeInvisibleDuration(message, 0))
      .catch((e: unknown) => this.#options.onError(e))
  }
}
