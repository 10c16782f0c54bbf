// One member of a consumer group at work. One loop reads new entries with XREADGROUP BLOCK on a
// connection of its own; another sweeps stale pending entries with XAUTOCLAIM (workers that died,
// retries whose delay has passed). Claim, run, complete and only then XACK is the core's job; this
// file only moves entries in and out of Redis.

import { setTimeout as sleep } from 'node:timers/promises'
import type { IdempotentConsumer } from '../../consumer/consumer.js'
import type { ConsumerStats } from '../../consumer/handle.js'
import type { Delivery } from '../../consumer/types.js'
import type { ResolvedStreamOptions } from './redis-stream-options.js'
import type { RedisStreamClient } from './redis-streams-driver.js'
import { StreamDeliveries } from './stream-deliveries.js'
import { isNoGroup, type StreamEntry, StreamGroup } from './stream-group.js'

export class StreamWorker<P, Tx> {
  readonly #core: IdempotentConsumer<P, Tx>
  readonly #client: RedisStreamClient
  readonly #reader: RedisStreamClient
  readonly #ownReader: boolean
  readonly #options: ResolvedStreamOptions<P>
  readonly #group: StreamGroup
  readonly #deliveries: StreamDeliveries<P>
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #handling = new Set<Promise<unknown>>()
  #stopping = false
  #stopped!: () => void
  readonly #stop = new Promise<void>((resolve) => {
    this.#stopped = resolve
  })
  #readerId: number | undefined
  #reading: Promise<void> | undefined
  #sweeping: Promise<void> | undefined
  #sweepAgain = false
  #closing: Promise<void> | undefined

  constructor(
    core: IdempotentConsumer<P, Tx>,
    client: RedisStreamClient,
    reader: RedisStreamClient,
    ownReader: boolean,
    options: ResolvedStreamOptions<P>,
    stats: ConsumerStats,
  ) {
    this.#core = core
    this.#client = client
    this.#reader = reader
    this.#ownReader = ownReader
    this.#options = options
    this.#group = new StreamGroup(client, options.stream, options.group, options.consumerName, options.startId)
    this.#deliveries = new StreamDeliveries(this.#group, options, (delayMs) => this.#sweepAfter(delayMs), stats)
  }

  async start(): Promise<void> {
    await this.#group.ensureGroup()
    this.#readerId = await this.#clientId()
    this.#reading = this.#readLoop()
    this.#sweepAfter(0)
  }

  /** Resolves once close() finished. */
  get done(): Promise<void> {
    return this.#stop.then(() => this.#closing)
  }

  /** The group's lag (XINFO GROUPS), asked on `client`, not on the blocked read connection; undefined once closing. */
  lag(): Promise<number | undefined> {
    if (this.#stopping) return Promise.resolve(undefined)
    return this.#group.lag()
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    // Stop fetching first: no new reads, no sweeps, and a read blocked in Redis is released.
    this.#stopping = true
    this.#stopped()
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    await this.#unblockReader()
    await this.#sweeping
    // Then let the core finish or hand back (retry 0) what it holds; it acks nothing unfinished.
    await this.#core.close()
    await Promise.allSettled(this.#handling)
    if (this.#ownReader) await this.#reader.quit().catch(() => this.#reader.disconnect())
  }

  /**
   * Wait for the read loop to end. CLIENT UNBLOCK (sent on the other connection) answers a blocked
   * XREADGROUP as a timeout, with no entries, so nothing read is dropped; it is sent again in case the
   * read had not reached Redis yet. A read still stuck after `block` (Redis unreachable) ends by
   * disconnecting the adapter's own read connection: anything it had read stays pending, to be claimed.
   */
  async #unblockReader(): Promise<void> {
    const reading = this.#reading
    if (reading === undefined) return
    let done = false
    void reading.finally(() => {
      done = true
    })
    let unblocking = false
    const giveUpAt = Date.now() + this.#options.blockMs + 1000
    while (!done) {
      if (!unblocking && this.#readerId !== undefined) {
        unblocking = true
        void this.#client
          .call('CLIENT', 'UNBLOCK', this.#readerId)
          .catch(() => 0)
          .finally(() => {
            unblocking = false
          })
      }
      if (Date.now() > giveUpAt && this.#ownReader) this.#reader.disconnect()
      await Promise.race([reading, sleep(50)])
    }
  }

  /**
   * Read new entries while there is room in the core. At start, first re-read this consumer's own
   * pending entries (a stable consumerName after a restart), then only new ones ('>').
   */
  async #readLoop(): Promise<void> {
    let from = '0'
    let pause = 100
    while (!this.#stopping) {
      const count = await this.#room()
      if (this.#stopping) break
      if (count === 0) continue
      let entries: StreamEntry[]
      try {
        entries = await this.#group.read(this.#reader, count, from === '>' ? this.#options.blockMs : undefined, from)
        pause = 100
      } catch (error) {
        if (this.#stopping) break
        if (await this.#recreateGroup(error)) continue
        this.#options.onError(error)
        await Promise.race([sleep(pause), this.#stop])
        pause = Math.min(pause * 2, 5000)
        // The connection may have been replaced: its id is needed to unblock it at close.
        this.#readerId = await this.#clientId()
        continue
      }
      if (from !== '>') from = entries.at(-1)?.id ?? '>'
      this.#handle(entries)
    }
  }

  /**
   * How many entries to read next: wait for free capacity, and while handlers still run, for half of
   * the consumer's concurrency (or `count`) to be free, so that each XREADGROUP and each batch claim
   * carries many entries rather than the one slot that just freed.
   */
  async #room(): Promise<number> {
    const core = this.#core
    // capacity + inFlight is the concurrency; with nothing in flight all of it is free, so this
    // never waits for more than the consumer can free.
    const want = Math.max(1, Math.min(this.#options.count, Math.floor((core.capacity + core.inFlight) / 2)))
    if (core.capacity < want) await Promise.race([core.whenCapacity(want), this.#stop])
    return Math.min(this.#options.count, core.capacity)
  }

  /** Sweep once, after `delayMs`; sweeps never overlap (one asked for during a sweep runs after it). */
  #sweepAfter(delayMs: number): void {
    if (this.#stopping) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      this.#sweep()
    }, delayMs)
    timer.unref()
    this.#timers.add(timer)
  }

  #sweep(): void {
    if (this.#stopping) return
    if (this.#sweeping !== undefined) {
      this.#sweepAgain = true
      return
    }
    this.#sweeping = this.#recover().finally(() => {
      this.#sweeping = undefined
      if (this.#sweepAgain) {
        this.#sweepAgain = false
        this.#sweep()
      } else {
        this.#sweepAfter(this.#options.recoverEveryMs)
      }
    })
  }

  /** XAUTOCLAIM the group's stale pending entries, as many as the core has room for. */
  async #recover(): Promise<void> {
    let cursor = '0-0'
    do {
      const room = Math.min(this.#options.count, this.#core.capacity)
      if (room === 0) return
      try {
        const claimed = await this.#group.autoClaim(this.#options.claimIdleMs, cursor, room)
        cursor = claimed.next
        if (this.#stopping) {
          // Claimed during close: leave them pending, claimable again at once by another consumer.
          await Promise.all(claimed.entries.map((entry) => this.#group.touch(entry.id, this.#options.claimIdleMs)))
          return
        }
        this.#handle(claimed.entries)
      } catch (error) {
        if (!(await this.#recreateGroup(error))) this.#options.onError(error)
        return
      }
    } while (cursor !== '0-0' && !this.#stopping)
  }

  #handle(entries: readonly StreamEntry[]): void {
    const deliveries: Delivery<P>[] = this.#deliveries.from(entries)
    if (deliveries.length === 0) return
    if (this.#options.batch) this.#track(this.#core.handleBatch(deliveries))
    else for (const delivery of deliveries) this.#track(this.#core.handle(delivery))
  }

  #track(handling: Promise<unknown>): void {
    const tracked = handling.catch(this.#options.onError).finally(() => this.#handling.delete(tracked))
    this.#handling.add(tracked)
  }

  /** After NOGROUP (Redis lost the group: restarted without persistence), create it again; true if that was the error. */
  async #recreateGroup(error: unknown): Promise<boolean> {
    if (!isNoGroup(error)) return false
    try {
      await this.#group.ensureGroup()
    } catch (failure) {
      this.#options.onError(failure)
      await Promise.race([sleep(500), this.#stop])
    }
    return true
  }

  async #clientId(): Promise<number | undefined> {
    try {
      return (await this.#reader.call('CLIENT', 'ID')) as number
    } catch {
      return undefined
    }
  }
}
