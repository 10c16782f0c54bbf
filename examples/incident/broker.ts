// An in-memory broker with at-least-once delivery and injected faults, driven by a seeded PRNG.
//
// Every random draw is made by the broker in a fixed order that does not depend on what the
// consumer does, so two brokers built from the same seed and workload deliver the exact same
// sequence to two different consumers (checked through `trace`).

import { createPrng, type Prng } from './prng.js'

export interface FaultRates {
  /** Per delivery: the consumer crashes after doing the work, before acking. */
  crashAfterWork: number
  /** Per publish: the confirmation is lost, so the publisher publishes the same message again. */
  publisherRetry: number
  /** Per delivery: the consumer crashes on receipt, before doing anything. */
  crashBeforeWork: number
}

export type CrashPoint = 'before-work' | 'after-work'

/** Thrown by a consumer to die mid-delivery: the delivery is abandoned without an ack. */
export class SimulatedCrash extends Error {
  constructor(readonly point: CrashPoint) {
    super(`simulated consumer crash ${point}`)
    this.name = 'SimulatedCrash'
  }
}

export interface Delivery<M> {
  readonly message: M
  /** 1 for the first delivery of this copy, +1 per redelivery. */
  readonly deliveryCount: number
  /** A point where the consumer may die: throws `SimulatedCrash` if this delivery is planned to crash there. */
  crashPoint(point: CrashPoint): void
  ack(): void
}

export interface BrokerStats {
  /** `publish` calls: one per distinct message. */
  published: number
  deliveries: number
  /** Extra copies enqueued by publisher retries (same messageId). */
  publisherRetries: number
  crashesBeforeWork: number
  crashesAfterWork: number
  redeliveries: number
}

export interface BrokerOptions {
  seed: number
  faults: FaultRates
  /** Redelivery happens after this many other deliveries (a visibility timeout), drawn in [min, max]. */
  redeliveryDelay?: { min: number; max: number }
  /** A publisher retry lands after this many other publishes, drawn in [min, max]. */
  retryDelay?: { min: number; max: number }
}

interface Copy<M> {
  message: M
  deliveryCount: number
}

export class SimulatedBroker<M extends { messageId: string }> {
  readonly stats: BrokerStats = {
    published: 0,
    deliveries: 0,
    publisherRetries: 0,
    crashesBeforeWork: 0,
    crashesAfterWork: 0,
    redeliveries: 0,
  }
  /** One line per delivery and its fate; equal traces mean equal incidents. */
  readonly trace: string[] = []
  readonly #rng: Prng
  readonly #faults: FaultRates
  readonly #redeliveryDelay: { min: number; max: number }
  readonly #retryDelay: { min: number; max: number }
  readonly #queue: Copy<M>[] = []
  /** Publisher retries waiting for their confirmation timeout: `due` counts down per publish. */
  #pendingRetries: { message: M; due: number }[] = []

  constructor(options: BrokerOptions) {
    for (const [name, rate] of Object.entries(options.faults)) {
      if (!(rate >= 0 && rate < 1)) throw new RangeError(`fault rate ${name} must be in [0, 1), got ${rate}`)
    }
    this.#rng = createPrng(options.seed, 2)
    this.#faults = { ...options.faults }
    this.#redeliveryDelay = options.redeliveryDelay ?? { min: 5, max: 40 }
    this.#retryDelay = options.retryDelay ?? { min: 1, max: 10 }
  }

  /** The producer publishes; if the confirmation is lost it publishes the same message again, a little later. */
  publish(message: M): void {
    this.stats.published++
    this.#tickRetries()
    this.#queue.push({ message, deliveryCount: 0 })
    const confirmLost = this.#rng.chance(this.#faults.publisherRetry)
    const delay = this.#rng.int(this.#retryDelay.min, this.#retryDelay.max)
    if (confirmLost) this.#pendingRetries.push({ message: structuredClone(message), due: delay })
  }

  /** Deliver until the queue is empty, one delivery at a time. */
  async consume(handler: (delivery: Delivery<M>) => Promise<void>): Promise<void> {
    this.#flushRetries()
    for (let copy = this.#queue.shift(); copy !== undefined; copy = this.#queue.shift()) {
      copy.deliveryCount++
      this.stats.deliveries++
      if (copy.deliveryCount > 1) this.stats.redeliveries++
      // Drawn for every delivery, whatever happens next.
      const crashBefore = this.#rng.chance(this.#faults.crashBeforeWork)
      const crashAfter = this.#rng.chance(this.#faults.crashAfterWork)
      const redeliverAfter = this.#rng.int(this.#redeliveryDelay.min, this.#redeliveryDelay.max)
      const planned: CrashPoint | null = crashBefore ? 'before-work' : crashAfter ? 'after-work' : null

      let acked = false
      const delivery: Delivery<M> = {
        message: structuredClone(copy.message),
        deliveryCount: copy.deliveryCount,
        crashPoint: (point) => {
          if (acked) throw new Error('crashPoint after ack')
          if (point === planned) throw new SimulatedCrash(point)
        },
        ack: () => {
          acked = true
        },
      }
      const tag = `${copy.message.messageId}#${copy.deliveryCount}`
      try {
        await handler(delivery)
      } catch (error) {
        if (!(error instanceof SimulatedCrash) || acked) throw error
        if (error.point === 'before-work') this.stats.crashesBeforeWork++
        else this.stats.crashesAfterWork++
        this.trace.push(`${tag} crash ${error.point}`)
        // Never acked: the broker redelivers once the visibility timeout lapses.
        this.#queue.splice(Math.min(redeliverAfter, this.#queue.length), 0, copy)
        continue
      }
      if (!acked) throw new Error(`handler returned without acking ${tag}`)
      this.trace.push(`${tag} ack`)
    }
  }

  #tickRetries(): void {
    const still: { message: M; due: number }[] = []
    for (const retry of this.#pendingRetries) {
      if (--retry.due <= 0) this.#enqueueRetry(retry.message)
      else still.push(retry)
    }
    this.#pendingRetries = still
  }

  #flushRetries(): void {
    for (const retry of this.#pendingRetries) this.#enqueueRetry(retry.message)
    this.#pendingRetries = []
  }

  #enqueueRetry(message: M): void {
    this.stats.publisherRetries++
    this.#queue.push({ message, deliveryCount: 0 })
  }
}
