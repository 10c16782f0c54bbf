// Stream entries as core Deliveries: the key and payload read from the entry, and ack, retry,
// deadLetter and extend as XACK, XCLAIM and a MULTI of XADD + XACK. It also remembers which entries
// this process holds, so that a recovery sweep never hands the core an entry it is still handling.

import type { ConsumerStats } from '../../consumer/handle.js'
import type { Delivery } from '../../consumer/types.js'
import { validateKey } from '../../core/key.js'
import { lazyHeaders } from '../header-record.js'
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
    this.#acks = new AckBatcher((ids) => group.ack(ids))
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
    const group = this.#group
    const acks = this.#acks
    const { claimIdleMs, deadLetterStream, payloadField } = this.#options
    const release = (): void => {
      this.#held.delete(entry.id)
    }
    return {
      key,
      payload,
      deliveryCount: entry.deliveryCount,
      orderingKey: this.#options.orderingKey?.(entry, payload),
      raw: entry,
      // The entry's fields but the payload: the id field and whatever headers the producer added as
      // fields, already strings; names as written (field names are case-sensitive).
      headers: lazyHeaders(() => Object.entries(entry.fields).filter(([name]) => name !== payloadField)),
      async ack() {
        try {
          await acks.ack(entry.id)
        } finally {
          release()
        }
      },
      // Streams cannot redeliver later on their own. The entry stays pending, and its idle time is set
      // so that XAUTOCLAIM (here or in any other consumer) takes it again once `delayMs` has passed, with
      // its delivery counter incremented. A delay longer than claimIdle is cut to claimIdle. Re-adding
      // the entry instead would lose its delivery count and cannot be delayed either.
      retry: async (delayMs: number) => {
        const delay = Math.min(Math.max(0, delayMs), claimIdleMs)
        try {
          await group.touch(entry.id, claimIdleMs - delay)
        } finally {
          release()
          this.#recoverAfter(delay)
        }
      },
      async deadLetter(reason: string) {
        try {
          await group.deadLetter(entry, deadLetterStream, { reason, deliveryCount: entry.deliveryCount })
        } finally {
          release()
        }
      },
      // XCLAIM to ourselves with JUSTID resets the idle time, so XAUTOCLAIM elsewhere leaves a long handler alone.
      async extend() {
        await group.touch(entry.id)
      },
      extendEveryMs: Math.max(1, Math.floor(claimIdleMs / 3)),
    }
  }

  #reject(entry: StreamEntry, reason: string): void {
    this.#stats.rejected++
    this.#group
      .deadLetter(entry, this.#options.deadLetterStream, { reason, deliveryCount: entry.deliveryCount })
      .catch(this.#options.onError)
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
