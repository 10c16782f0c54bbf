// Stream entries as core Deliveries: the key and payload read from the entry, and ack, retry,
// deadLetter and extend as XACK, XCLAIM and a MULTI of XADD + XACK. It also remembers which entries
// this process holds, so that a recovery sweep never hands the core an entry it is still handling.
// A delivery is one object of a class (its verbs on the prototype), not a literal of closures: the
// adapter makes one per message.

import type { ConsumerStats } from '../../consumer/handle.js'
import type { Delivery } from '../../consumer/types.js'
import { validateKey } from '../../core/key.js'
import { messageOf } from '../../errors.js'
import { type HeaderRecord, headerRecord } from '../header-record.js'
import { AckBatcher } from './ack-batcher.js'
import type { ResolvedStreamOptions } from './redis-stream-options.js'
import type { StreamEntry, StreamGroup } from './stream-group.js'

export class StreamDeliveries<P> {
  readonly #group: StreamGroup
  readonly #options: ResolvedStreamOptions<P>
  /** Sweep the pending entries again after this many ms (a retry's delay has passed). */
  readonly #recoverAfter: (delayMs: number) => void
  /** Entry ids handed to the core and not yet acked, retried or dead-lettered. */
  readonly #held = new Set<string>()
  readonly #acks: AckBatcher
  readonly #stats: ConsumerStats
  readonly #extendEveryMs: number

  constructor(
    group: StreamGroup,
    options: ResolvedStreamOptions<P>,
    recoverAfter: (delayMs: number) => void,
    stats: ConsumerStats = { rejected: 0 },
  ) {
    this.#group = group
    this.#stats = stats
    this.#options = options
    this.#recoverAfter = recoverAfter
    this.#extendEveryMs = Math.max(1, Math.floor(options.claimIdleMs / 3))
    // An entry is held until the XACK carrying it ended, as it was until its ack() returned.
    this.#acks = new AckBatcher(
      (ids) => group.ack(ids),
      undefined,
      (ids) => {
        for (const id of ids) this.#held.delete(id)
      },
    )
  }

  get held(): number {
    return this.#held.size
  }

  /**
   * The deliveries for the core, from `entries` just read or claimed. Entries this process already
   * holds are skipped; entries deleted while pending are acknowledged (nothing is left to handle);
   * an entry that cannot be decoded or keyed is dead-lettered here with the reason, never acked silently.
   */
  from(entries: readonly StreamEntry[]): Delivery<P>[] {
    const deliveries: Delivery<P>[] = []
    for (const entry of entries) {
      if (this.#held.has(entry.id)) continue
      if (entry.deleted) {
        this.#acks.ack(entry.id).catch(this.#options.onError)
        continue
      }
      let key: string
      let payload: P
      try {
        key = this.#keyOf(entry)
      } catch (error) {
        this.#reject(entry, `no usable key: ${messageOf(error)}`)
        continue
      }
      try {
        payload = this.#options.decode(entry)
      } catch (error) {
        this.#reject(entry, `cannot decode the payload: ${messageOf(error)}`)
        continue
      }
      this.#held.add(entry.id)
      deliveries.push(this.#delivery(entry, key, payload))
    }
    return deliveries
  }

  #keyOf(entry: StreamEntry): string {
    const key = this.#options.key(entry)
    return validateKey(key === undefined || key === '' ? `${entry.stream}:${entry.id}` : key)
  }

  #delivery(entry: StreamEntry, key: string, payload: P): Delivery<P> {
    return new StreamDelivery(this, entry, key, payload, this.#options.orderingKey?.(entry, payload))
  }

  /** The entry's fields but the payload, for `headers()`. */
  get payloadField(): string {
    return this.#options.payloadField
  }

  /** How often the core calls a delivery's extend(): a third of claimIdle, so that XAUTOCLAIM never sees it idle. */
  get extendEveryMs(): number {
    return this.#extendEveryMs
  }

  /** XACK (gathered with the other acks of this turn); the entry is released once that XACK ended. */
  ack(entry: StreamEntry): Promise<void> {
    return this.#acks.ack(entry.id)
  }

  /**
   * Streams cannot redeliver later on their own. The entry stays pending, and its idle time is set
   * so that XAUTOCLAIM (here or in any other consumer) takes it again once `delayMs` has passed, with
   * its delivery counter incremented. A delay longer than claimIdle is cut to claimIdle. Re-adding
   * the entry instead would lose its delivery count and cannot be delayed either.
   */
  async retry(entry: StreamEntry, delayMs: number): Promise<void> {
    const { claimIdleMs } = this.#options
    const delay = Math.min(Math.max(0, delayMs), claimIdleMs)
    try {
      await this.#group.touch(entry.id, claimIdleMs - delay)
    } finally {
      this.#held.delete(entry.id)
      this.#recoverAfter(delay)
    }
  }

  async deadLetter(entry: StreamEntry, reason: string): Promise<void> {
    try {
      await this.#group.deadLetter(entry, this.#options.deadLetterStream, {
        reason,
        deliveryCount: entry.deliveryCount,
      })
    } finally {
      this.#held.delete(entry.id)
    }
  }

  /** XCLAIM to ourselves with JUSTID resets the idle time, so XAUTOCLAIM elsewhere leaves a long handler alone. */
  async extend(entry: StreamEntry): Promise<void> {
    await this.#group.touch(entry.id)
  }

  #reject(entry: StreamEntry, reason: string): void {
    this.#stats.rejected++
    this.#group
      .deadLetter(entry, this.#options.deadLetterStream, { reason, deliveryCount: entry.deliveryCount })
      .catch(this.#options.onError)
  }
}

/** One entry handed to the core; its verbs are its StreamDeliveries'. */
class StreamDelivery<P> implements Delivery<P> {
  readonly key: string
  readonly payload: P
  readonly deliveryCount: number
  readonly orderingKey: string | undefined
  readonly raw: StreamEntry
  readonly extendEveryMs: number
  readonly #owner: StreamDeliveries<P>
  #headers: HeaderRecord | undefined = undefined

  constructor(
    owner: StreamDeliveries<P>,
    entry: StreamEntry,
    key: string,
    payload: P,
    orderingKey: string | undefined,
  ) {
    this.#owner = owner
    this.key = key
    this.payload = payload
    this.deliveryCount = entry.deliveryCount
    this.orderingKey = orderingKey
    this.raw = entry
    this.extendEveryMs = owner.extendEveryMs
  }

  /**
   * The entry's fields but the payload: the id field and whatever headers the producer added as
   * fields, already strings; names as written (field names are case-sensitive). Built on first call.
   */
  headers(): HeaderRecord {
    const field = this.#owner.payloadField
    this.#headers ??= headerRecord(Object.entries(this.raw.fields).filter(([name]) => name !== field))
    return this.#headers
  }

  ack(): Promise<void> {
    return this.#owner.ack(this.raw)
  }

  retry(delayMs: number): Promise<void> {
    return this.#owner.retry(this.raw, delayMs)
  }

  deadLetter(reason: string): Promise<void> {
    return this.#owner.deadLetter(this.raw, reason)
  }

  extend(): Promise<void> {
    return this.#owner.extend(this.raw)
  }
}
