// One assigned partition inside the adapter: the messages fetched and not yet handed to the core
// (in offset order), the offsets between fetch and commit, and retries done the Kafka way: the
// partition rewinds to the failed offset and waits out the backoff, while other partitions go on.
// Each message is in exactly one place: waiting here, in the core, or done.

import type { Delivery } from '../../consumer/types.js'
import type { KafkaMessage } from './kafka-driver.js'
import { PartitionOffsets } from './partition-offsets.js'

/** What a partition asks of the adapter around it. */
export interface PartitionHost<P> {
  /** A message's key and payload, or the reason it can have neither (it is then dead-lettered, never handed to the core). */
  prepare(message: KafkaMessage): { key: string; payload: P } | { reject: string }
  /** Produce `message` to its dead-letter topic; resolves once the broker acknowledged it. */
  deadLetter(message: KafkaMessage, key: string, reason: string, deliveryCount: number): Promise<void>
  /** An offset became done: a commit may move. */
  progressed(): void
  /** Messages may be handed to the core again (a retry's delay passed, a message came back). */
  wake(): void
  readonly closing: boolean
}

export class KafkaPartition<P> {
  readonly topic: string
  readonly partition: number
  readonly offsets = new PartitionOffsets()
  readonly #host: PartitionHost<P>
  readonly #byKey: boolean
  /** Fetched and not in the core, by offset. */
  readonly #waiting: KafkaMessage[] = []
  /** Deliveries of this partition that failed, by offset: the next delivery's count is one more. */
  readonly #failures = new Map<bigint, number>()
  #inCore = 0
  /** Bumped at each rewind: deliveries handed out before it, past the rewound offset, are withdrawn. */
  #generation = 0
  #rewoundTo: bigint | undefined
  #blockedUntil = 0
  #timer: NodeJS.Timeout | undefined
  #revoked = false

  constructor(topic: string, partition: number, byKey: boolean, host: PartitionHost<P>) {
    this.topic = topic
    this.partition = partition
    this.#byKey = byKey
    this.#host = host
  }

  /** Messages fetched and not settled: waiting here or in the core. */
  get held(): number {
    return this.#waiting.length + this.#inCore
  }

  get revoked(): boolean {
    return this.#revoked
  }

  /** A fetched message; one read again (after a rebalance or a reconnect) is dropped. */
  add(message: KafkaMessage): void {
    if (this.#revoked || !this.offsets.take(message.offset)) return
    this.#waiting.push(message)
  }

  /** Up to `max` deliveries to hand to the core now (none while a retry's backoff runs). */
  take(max: number, into: Delivery<P>[]): number {
    if (this.#revoked || this.#waiting.length === 0 || max <= 0) return 0
    const now = Date.now()
    if (now < this.#blockedUntil) return 0
    let taken = 0
    while (taken < max && this.#waiting.length > 0) {
      const message = this.#waiting.shift() as KafkaMessage
      const prepared = this.#host.prepare(message)
      if ('reject' in prepared) {
        this.#deadLetterNow(message, prepared.reject)
        continue
      }
      this.#inCore++
      into.push(this.#delivery(message, prepared.key, prepared.payload))
      taken++
    }
    return taken
  }

  /** The group gave the partition to another member: nothing more is handed out, acked or committed here. */
  revoke(): void {
    this.#revoked = true
    this.#waiting.length = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  #delivery(message: KafkaMessage, key: string, payload: P): Delivery<P> {
    const generation = this.#generation
    const deliveryCount = (this.#failures.get(message.offset) ?? 0) + 1
    let withdrawn = false
    const isWithdrawn = (): boolean => {
      withdrawn ||= this.#revoked || (generation !== this.#generation && message.offset > (this.#rewoundTo as bigint))
      return withdrawn
    }
    let settled = false
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      this.#inCore--
      return true
    }
    return {
      key,
      payload,
      deliveryCount,
      orderingKey: this.#laneOf(message),
      raw: message,
      withdrawn: isWithdrawn,
      ack: async () => {
        if (settle() && !this.#revoked) this.#done(message.offset)
      },
      retry: async (delayMs: number) => {
        if (!settle()) return
        if (this.#revoked || this.#host.closing) return
        if (!withdrawn) {
          this.#failures.set(message.offset, deliveryCount)
          this.#rewind(message.offset, delayMs)
        }
        this.#putBack(message)
      },
      deadLetter: async (reason: string) => {
        if (settled) return
        try {
          await this.#host.deadLetter(message, key, reason, deliveryCount)
        } catch (error) {
          // Not on the dead-letter topic: it comes again, and its record sends it there again.
          if (settle() && !this.#revoked && !this.#host.closing) {
            this.#rewind(message.offset, 1000)
            this.#putBack(message)
          }
          throw error
        }
        if (settle() && !this.#revoked) this.#done(message.offset)
      },
    }
  }

  /** Ordered by partition, or by record key within the partition. */
  #laneOf(message: KafkaMessage): string {
    const lane = `${this.topic}/${this.partition}`
    if (!this.#byKey || message.key === undefined || message.key === null) return lane
    const key = Buffer.isBuffer(message.key) ? message.key.toString('base64') : String(message.key)
    return `${lane}/${key}`
  }

  #done(offset: bigint): void {
    this.#failures.delete(offset)
    this.offsets.done(offset)
    this.#host.progressed()
  }

  /** Later deliveries already handed out are withdrawn; nothing is handed out for `delayMs`. */
  #rewind(offset: bigint, delayMs: number): void {
    this.#generation++
    this.#rewoundTo = this.#rewoundTo === undefined || offset < this.#rewoundTo ? offset : this.#rewoundTo
    const until = Date.now() + Math.max(0, delayMs)
    if (until > this.#blockedUntil) this.#blockedUntil = until
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    // #rewoundTo is kept: a delivery of an older generation past it that has still not started is
    // withdrawn even after the backoff (its message is then handed out afresh, in order).
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        this.#host.wake()
      },
      Math.max(0, delayMs),
    )
    this.#timer.unref()
  }

  /** A message back from the core, unfinished: it waits in offset order to be handed out again. */
  #putBack(message: KafkaMessage): void {
    let i = this.#waiting.length
    while (i > 0 && (this.#waiting[i - 1] as KafkaMessage).offset > message.offset) i--
    this.#waiting.splice(i, 0, message)
    this.#host.wake()
  }

  #deadLetterNow(message: KafkaMessage, reason: string): void {
    this.#inCore++
    const offset = message.offset
    this.#host.deadLetter(message, `${this.topic}/${this.partition}/${offset}`, reason, 1).then(
      () => {
        this.#inCore--
        if (!this.#revoked) this.#done(offset)
      },
      () => {
        this.#inCore--
        if (this.#revoked || this.#host.closing) return
        this.#rewind(offset, 1000)
        this.#putBack(message)
      },
    )
  }
}
