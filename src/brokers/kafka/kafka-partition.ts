// One assigned partition inside the adapter: the messages fetched and not yet handed to the core
// (in offset order), the offsets between fetch and commit, and retries done the Kafka way: the
// partition rewinds to the failed offset and waits out the backoff, while other partitions go on.
// Each message is in exactly one place: waiting here, in the core, or done.

import type { Delivery } from '../../consumer/types.js'
import { lazyHeaders } from '../header-record.js'
import type { KafkaMessage } from './kafka-driver.js'
import { headerEntries } from './kafka-headers.js'
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
  /** Records past a gap were refused: read the partitions again from the group's committed offsets. */
  reread(): void
  /** A failure nobody else reports (a rejected message the dead-letter topic refused). */
  onError(error: unknown): void
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
  /** Deliveries in the core, not settled. */
  readonly #handed = new Set<Handed>()
  /** Of those, the ones a rewind withdrew that have not come back yet: nothing is handed out meanwhile. */
  #stale = 0
  #blockedUntil = 0
  #timer: NodeJS.Timeout | undefined
  #revoked = false
  /** Records fetched before the position this ownership starts at was known (see `anchor`). */
  #early: KafkaMessage[] | undefined

  /** `anchored` false: a new ownership, whose records wait for `anchor(position)` before any is taken. */
  constructor(topic: string, partition: number, byKey: boolean, host: PartitionHost<P>, anchored = true) {
    this.topic = topic
    this.partition = partition
    this.#byKey = byKey
    this.#host = host
    if (!anchored) this.#early = []
  }

  /** Messages fetched and not settled: waiting here (or for the anchor) or in the core. */
  get held(): number {
    return this.#waiting.length + this.#inCore + (this.#early?.length ?? 0)
  }

  /**
   * This ownership starts at `position`, the group's committed offset (undefined: unknown, the first
   * record fetched is the start). The records fetched meanwhile are taken now, against it.
   */
  anchor(position: bigint | undefined): void {
    const early = this.#early
    if (early === undefined) return
    this.#early = undefined
    if (position !== undefined) this.offsets.expect(position)
    for (const message of early) this.add(message)
  }

  /** Messages handed to the core (or to the dead-letter topic) and not settled. */
  get inCore(): number {
    return this.#inCore
  }

  get revoked(): boolean {
    return this.#revoked
  }

  /**
   * A fetched message; one read again (after a rebalance or a reconnect) is dropped, and so is one
   * past a gap not confirmed yet (the partition is read again).
   */
  add(message: KafkaMessage): void {
    if (this.#revoked) return
    if (this.#early !== undefined) {
      this.#early.push(message)
      return
    }
    if (this.offsets.take(message.offset)) this.#waiting.push(message)
    else if (this.offsets.gap) this.#host.reread()
  }

  /** Up to `max` deliveries to hand to the core now (none while a retry's backoff runs). */
  take(max: number, into: Delivery<P>[]): number {
    if (this.#revoked || this.#waiting.length === 0 || max <= 0) return 0
    // Withdrawn deliveries still in the core come back to their place in offset order: handing out
    // what follows them before they are back would run it first.
    if (this.#stale > 0) return 0
    const now = Date.now()
    if (now < this.#blockedUntil) {
      // A timer may fire a millisecond before the clock reads its time: never be left without one.
      this.#wakeAt(this.#blockedUntil)
      return 0
    }
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
    this.#early = undefined
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  #delivery(message: KafkaMessage, key: string, payload: P): Delivery<P> {
    const deliveryCount = (this.#failures.get(message.offset) ?? 0) + 1
    const handed: Handed = { offset: message.offset, started: false, stale: false }
    this.#handed.add(handed)
    let withdrawn = false
    // Asked by the core just before the handler would run: a false answer means it runs now.
    const isWithdrawn = (): boolean => {
      if (withdrawn || handed.started) return withdrawn
      if (this.#revoked || handed.stale) withdrawn = true
      else handed.started = true
      return withdrawn
    }
    let settled = false
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      this.#inCore--
      this.#handed.delete(handed)
      if (handed.stale && --this.#stale === 0) this.#host.wake()
      return true
    }
    return {
      key,
      payload,
      deliveryCount,
      orderingKey: this.#laneOf(message),
      raw: message,
      headers: lazyHeaders(() => headerEntries(message.headers)),
      withdrawn: isWithdrawn,
      ack: async () => {
        if (settle() && !this.#revoked) this.#done(message.offset)
      },
      retry: async (delayMs: number) => {
        if (!settle()) return
        if (this.#revoked || this.#host.closing) return
        // A withdrawn delivery (or one a rewind withdrew that came back before its turn: a key busy
        // elsewhere) was not attempted: no failure counted, no rewind of its own.
        if (!withdrawn && !handed.stale) {
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

  /**
   * Deliveries after `offset` still in the core and not started are withdrawn (they come back
   * unrun); nothing is handed out until they are back and `delayMs` has passed. Those already
   * running (other keys, with ordering 'key') finish: their outcome counts.
   */
  #rewind(offset: bigint, delayMs: number): void {
    for (const handed of this.#handed) {
      if (handed.started || handed.stale || handed.offset <= offset) continue
      handed.stale = true
      this.#stale++
    }
    const until = Date.now() + Math.max(0, delayMs)
    if (until > this.#blockedUntil) this.#blockedUntil = until
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#wakeAt(this.#blockedUntil)
  }

  /** Wake the host at `time` (once: a timer already set stands). */
  #wakeAt(time: number): void {
    if (this.#timer !== undefined || this.#revoked) return
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        this.#host.wake()
      },
      Math.max(0, time - Date.now()),
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
      (error: unknown) => {
        this.#inCore--
        if (this.#revoked || this.#host.closing) return
        // Not on the dead-letter topic (it may not exist): the partition waits here, and says why.
        this.#host.onError(error)
        this.#rewind(offset, 1000)
        this.#putBack(message)
      },
    )
  }
}

/** A delivery in the core: whether its handler started, and whether a rewind withdrew it. */
interface Handed {
  readonly offset: bigint
  started: boolean
  stale: boolean
}
