// The pull loop: ask the durable consumer for as many messages as the core has room for, hand
// what arrives together to the core as one batch, and repeat. Pulls are sized by the core's
// capacity, so a message never waits in this process while its ack_wait runs out unextended.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Delivery, DeliveryResult } from '../../consumer/types.js'
import type { DeadLetterFn } from './jetstream-dead-letter.js'
import type { Translation } from './jetstream-delivery.js'
import type { FetchedMessages, JsMsgLike, PullConsumerLike } from './nats-driver.js'

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
export interface FetchStats {
  pulls: number
  pullFailures: number
  rejected: number
}

export interface FetchLoopOptions<P> {
  translate(msg: JsMsgLike): Translation<P>
  deadLetter: DeadLetterFn
  /** Hand messages that arrived together to `handleBatch` (one claim round trip), else one by one. */
  batch: boolean
  maxBatch: number
  /** How long one pull request waits for messages, in ms (at least 1000). */
  expiresMs: number
  onError(error: unknown): void
  /** The connection is closed for good: stop instead of retrying. */
  isClosed(): boolean
  /** Called after a failed pull, before the next (re-reads what may have changed, like the stream). */
  recover(): Promise<void>
}

export class FetchLoop<P> {
  readonly done: Promise<void>
  readonly #pull: PullConsumerLike
  readonly #core: ConsumerCore<P>
  readonly #options: FetchLoopOptions<P>
  readonly #stats: FetchStats
  readonly #stop = new AbortController()
  readonly #stopped: Promise<void>
  #current: FetchedMessages | undefined
  #queued: Delivery<P>[] = []
  #flushScheduled = false

  constructor(pull: PullConsumerLike, core: ConsumerCore<P>, stats: FetchStats, options: FetchLoopOptions<P>) {
    this.#pull = pull
    this.#core = core
    this.#stats = stats
    this.#options = options
    this.#stopped = new Promise((resolve) => this.#stop.signal.addEventListener('abort', () => resolve()))
    this.done = this.#run()
  }

  /** Stop pulling; resolves once every message already received was handed to the core. */
  stop(): Promise<void> {
    this.#stop.abort()
    this.#current?.stop()
    return this.done
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#stop.signal.aborted) {
      await this.#room()
      if (this.#stop.signal.aborted) break
      try {
        const max = Math.max(1, Math.min(this.#core.capacity, this.#options.maxBatch))
        this.#stats.pulls++
        this.#current = await this.#pull.fetch({ max_messages: max, expires: this.#options.expiresMs })
        if (this.#stop.signal.aborted) this.#current.stop()
        for await (const msg of this.#current) this.#accept(msg)
        failures = 0
      } catch (error) {
        if (this.#options.isClosed()) break
        this.#stats.pullFailures++
        // Pulls fail while the connection is down or the consumer is being re-created: back off and pull again.
        this.#options.onError(error)
        await sleep(Math.min(5000, 100 * 2 ** failures++), undefined, { signal: this.#stop.signal }).catch(() => {})
        await this.#options.recover().catch((e: unknown) => this.#options.onError(e))
      } finally {
        this.#current = undefined
        this.#flush()
      }
    }
  }

  /**
   * Wait until a worthwhile pull fits: half the core's slots (at most maxBatch) free, or nothing in
   * flight. Pulling whenever one slot frees up would mean a round trip per message under load.
   */
  async #room(): Promise<void> {
    const core = this.#core
    const want = Math.max(1, Math.min(this.#options.maxBatch, Math.ceil((core.capacity + core.inFlight) / 2)))
    // capacity + inFlight is the concurrency, all of it free once nothing is in flight: `want` always comes.
    if (core.capacity < want) await Promise.race([core.whenCapacity(want), this.#stopped])
  }

  #accept(msg: JsMsgLike): void {
    if (this.#stop.signal.aborted) {
      // Received after stop(): hand it straight back rather than start work during shutdown.
      try {
        msg.nak()
      } catch (error) {
        this.#options.onError(error)
      }
      return
    }
    const translated = this.#options.translate(msg)
    if (!translated.ok) {
      // No key or no payload: nothing the core could claim. It is poison, never requeued.
      this.#stats.rejected++
      this.#options
        .deadLetter(msg, translated.copyId, translated.reason)
        .catch((e: unknown) => this.#options.onError(e))
      return
    }
    this.#queued.push(translated.delivery)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      // Messages read from one socket chunk arrive in one turn of the event loop: one batch.
      setImmediate(() => this.#flush())
    }
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#queued.length === 0) return
    const deliveries = this.#queued
    this.#queued = []
    // The core settles each delivery (ack, retry or dead-letter) itself and never rejects.
    if (this.#options.batch) void this.#core.handleBatch(deliveries)
    else for (const delivery of deliveries) void this.#core.handle(delivery)
  }
}
