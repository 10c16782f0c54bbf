// The acks of one consume channel, sent together: the core acks each delivery on its own, often
// dozens in one turn of the event loop (a batch whose outcomes were stored together), and amqplib
// writes every basic.ack to the socket by itself. Here the acks asked for in one turn leave at the
// end of it: the longest run of settled deliveries from the oldest unsettled one as one basic.ack
// with `multiple` (which acknowledges every outstanding delivery up to its tag, so it is used only
// when every earlier delivery of the channel is settled), and the acks after a gap one by one.
// Nothing is acked before the core asked for it, and a delivery still at work is never covered.

import { StaleDeliveryError } from '../../consumer/stale-delivery.js'
import type { AmqpChannel, AmqpMessage } from './amqp-driver.js'

/** Where a delivery stands on the wire. */
export const Wire = {
  /** Delivered, nothing sent back yet: a `multiple` ack must not reach past it. */
  OPEN: 0,
  /** The core asked for its ack; sent at the end of the turn. */
  ACK_ASKED: 1,
  /** Acked or rejected: the broker no longer counts it as outstanding. */
  SENT: 2,
} as const
export type Wire = (typeof Wire)[keyof typeof Wire]

/** A delivery the window tracks: every message that arrives on the channel, in delivery-tag order. */
export interface Tracked {
  readonly key: string
  readonly raw: AmqpMessage
  wire: Wire
}

/** What the acks asked for in one turn wait on. */
interface Turn {
  promise: Promise<void>
  resolve(): void
  reject(error: unknown): void
}

/** Past this many settled entries at the front, the list is compacted. */
const COMPACT_AFTER = 1024

export class AckWindow {
  readonly #channel: AmqpChannel
  readonly #isOpen: () => boolean
  /** Every delivery of the channel not yet known sent, in delivery-tag order, from `#head`. */
  #deliveries: Tracked[] = []
  #head = 0
  /** Acks asked for in this turn. */
  #asked: Tracked[] = []
  /** What this turn's askers wait on. */
  #turn: Turn | undefined = undefined

  constructor(channel: AmqpChannel, isOpen: () => boolean) {
    this.#channel = channel
    this.#isOpen = isOpen
  }

  /** Deliveries still remembered: not yet known settled, or behind one that is not. */
  get tracked(): number {
    return this.#deliveries.length - this.#head
  }

  /** A message arrived on the channel (call in arrival order, before anything is sent for it). */
  track(delivery: Tracked): void {
    const list = this.#deliveries
    // Deliveries settled by a reject alone (retries held and requeued, plain dead-letter rejects)
    // never pass through #send: drop them from the front here too, or a channel that only rejects
    // would keep every message it ever received.
    if (list.length - this.#head >= COMPACT_AFTER) {
      while (this.#head < list.length && (list[this.#head] as Tracked).wire === Wire.SENT) this.#head++
      this.#compact()
    }
    this.#deliveries.push(delivery)
  }

  /** Ask for the delivery's ack: it leaves at the end of this turn; the promise says whether it did. */
  ack(delivery: Tracked): Promise<void> {
    delivery.wire = Wire.ACK_ASKED
    this.#asked.push(delivery)
    if (this.#turn === undefined) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const promise = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      this.#turn = { promise, resolve, reject }
      // After the other settlements of this turn (every I/O callback and its promise reactions).
      setImmediate(() => this.#flush())
    }
    return this.#turn.promise
  }

  #flush(): void {
    const turn = this.#turn as Turn
    const asked = this.#asked
    this.#turn = undefined
    this.#asked = []
    if (!this.#isOpen()) {
      // The broker took these messages back when the channel closed: the core reports a broker_error.
      const others = asked.length > 1 ? ` (with ${asked.length - 1} other ack(s))` : ''
      const why = `its channel closed before the ack${others} was sent; the broker redelivers it`
      turn.reject(new StaleDeliveryError((asked[0] as Tracked).key, 'ack', why))
      return
    }
    try {
      this.#send(asked)
    } catch (error) {
      turn.reject(error)
      return
    }
    turn.resolve()
  }

  #send(asked: readonly Tracked[]): void {
    const list = this.#deliveries
    let i = this.#head
    let last: Tracked | undefined
    for (; i < list.length; i++) {
      const delivery = list[i] as Tracked
      if (delivery.wire === Wire.OPEN) break
      if (delivery.wire === Wire.ACK_ASKED) {
        delivery.wire = Wire.SENT
        last = delivery
      }
    }
    this.#head = i
    if (last !== undefined) this.#channel.ack(last.raw, true)
    // Acks behind a delivery still at work: one by one, so that the broker forgets them now.
    for (const delivery of asked) {
      if (delivery.wire !== Wire.ACK_ASKED) continue
      delivery.wire = Wire.SENT
      this.#channel.ack(delivery.raw, false)
    }
    this.#compact()
  }

  /** Forget the settled front once it is most of the list. */
  #compact(): void {
    const list = this.#deliveries
    if (this.#head >= COMPACT_AFTER && this.#head * 2 >= list.length) {
      this.#deliveries = list.slice(this.#head)
      this.#head = 0
    }
  }
}
