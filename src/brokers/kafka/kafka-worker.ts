// One member of a consumer group at work: the client's message stream feeds per-partition queues;
// the queues feed the consumer core in batches; durable outcomes move each partition's commit
// point, which kafka-group-commits.ts commits for the partitions this member owns. Claim, run,
// complete and only then count an offset as done is the core's job; this file moves records.

import { setTimeout as sleep } from 'node:timers/promises'
import type { IdempotentConsumer } from '../../consumer/consumer.js'
import type { ConsumerStats } from '../../consumer/handle.js'
import type { Delivery } from '../../consumer/types.js'
import { validateKey } from '../../core/key.js'
import { messageOf } from '../../errors.js'
import type { KafkaDeadLetters } from './kafka-dead-letter.js'
import type { KafkaConsumerClient, KafkaMessage, KafkaMessageStream } from './kafka-driver.js'
import { GroupCommits } from './kafka-group-commits.js'
import type { ResolvedKafkaOptions } from './kafka-options.js'
import { KafkaPartition, type PartitionHost } from './kafka-partition.js'

/** Counters of the Kafka adapter. */
export interface KafkaConsumerStats extends ConsumerStats {
  /** Offsets committed (commit requests that succeeded). */
  commits: number
  /** Partitions taken away by a rebalance while this member held messages of theirs. */
  revoked: number
  /** Times the message stream failed and was opened again. */
  restarts: number
}

export class KafkaWorker<P, Tx> implements PartitionHost<P> {
  readonly #core: IdempotentConsumer<P, Tx>
  readonly #client: KafkaConsumerClient
  readonly #options: ResolvedKafkaOptions<P>
  readonly #deadLetters: KafkaDeadLetters
  readonly #stats: KafkaConsumerStats
  readonly #partitions = new Map<string, KafkaPartition<P>>()
  readonly #handling = new Set<Promise<unknown>>()
  #stream: KafkaMessageStream | undefined
  #paused = false
  #closing: Promise<void> | undefined
  #stopping = false
  #pumpQueued = false
  /** A pump that hands out even a small batch, due while slots are free but fewer than a batch's worth. */
  #pumpTimer: NodeJS.Timeout | undefined
  readonly #commits: GroupCommits<P>
  #streamEnded: (() => void) | undefined
  /** A read again from the committed offsets was asked for (a gap to confirm): the stream is being reopened. */
  #rereading = false
  #done!: () => void
  readonly done = new Promise<void>((resolve) => {
    this.#done = resolve
  })
  readonly #unsubscribe: (() => void)[] = []

  constructor(
    core: IdempotentConsumer<P, Tx>,
    client: KafkaConsumerClient,
    deadLetters: KafkaDeadLetters,
    options: ResolvedKafkaOptions<P>,
    stats: KafkaConsumerStats,
  ) {
    this.#core = core
    this.#client = client
    this.#deadLetters = deadLetters
    this.#options = options
    this.#stats = stats
    this.#commits = new GroupCommits(
      client,
      this.#partitions,
      {
        commitIntervalMs: options.commitIntervalMs,
        onError: (error) => options.onError(error),
        stopping: () => this.#stopping,
      },
      () => stats.commits++,
    )
    this.#unsubscribe.push(core.on('settled', () => this.wake()))
    this.#listen('consumer:group:rebalance', () => this.#commits.rebalanceStarted())
    this.#listen('consumer:group:join', () => this.#assigned())
  }

  get closing(): boolean {
    return this.#stopping
  }

  async start(): Promise<void> {
    await this.#open()
    // A client that was already a member (no join event came): act on its current assignment.
    if (!this.#commits.joined && this.#client.memberId !== null && this.#client.assignments !== null) {
      this.#assigned()
    }
    void this.#superviseStream()
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  /**
   * The group's lag over the partitions assigned to this member now: per partition, its end (the
   * last stable offset under read_committed, else the high watermark) less the group's committed
   * offset, summed. Records fetched and being handled count until their offset is committed. A
   * partition the group never committed counts from where this member starts it: its first offset
   * (startFrom 'earliest'), or nothing ('latest'). Asked of the broker with the client's own
   * connections (ListOffsets, OffsetFetch): no admin client. Undefined before the member has an
   * assignment, once closing, or when the client cannot list offsets.
   */
  async lag(): Promise<number | undefined> {
    const client = this.#client
    const assignments = client.assignments
    if (this.#stopping || assignments === null) return undefined
    if (client.listOffsets === undefined || client.listCommittedOffsets === undefined) return undefined
    const owned = new Map<string, Set<number>>()
    for (const { topic, partitions } of assignments) {
      if (partitions.length === 0) continue
      const set = owned.get(topic) ?? new Set<number>()
      for (const partition of partitions) set.add(partition)
      owned.set(topic, set)
    }
    if (owned.size === 0) return 0
    const topics = [...owned.keys()]
    const partitions = Object.fromEntries([...owned].map(([topic, set]) => [topic, [...set]]))
    const isolationLevel = this.#options.readCommitted ? 1 : 0
    const [ends, committed] = await Promise.all([
      client.listOffsets({ topics, partitions, isolationLevel }),
      client.listCommittedOffsets({ topics: topics.map((topic) => ({ topic, partitions: partitions[topic] ?? [] })) }),
    ])
    const never = (topic: string, partition: number) => {
      const offset = committed.get(topic)?.[partition]
      return offset === undefined || offset < 0n
    }
    let starts: Map<string, bigint[]> | undefined
    if (this.#options.startFrom === 'earliest' && [...owned].some(([t, set]) => [...set].some((p) => never(t, p)))) {
      starts = await client.listOffsets({ topics, partitions, isolationLevel, timestamp: -2n })
    }
    let lag = 0n
    for (const [topic, set] of owned) {
      for (const partition of set) {
        const end = ends.get(topic)?.[partition]
        if (end === undefined) continue
        const from = never(topic, partition)
          ? this.#options.startFrom === 'earliest'
            ? starts?.get(topic)?.[partition]
            : end
          : committed.get(topic)?.[partition]
        if (from !== undefined && end > from) lag += end - from
      }
    }
    return Number(lag)
  }

  // --- PartitionHost ----------------------------------------------------------------------------

  prepare(message: KafkaMessage): { key: string; payload: P } | { reject: string } {
    let key: string
    try {
      const found = this.#options.key(message)
      key = validateKey(found ?? `${message.topic}/${message.partition}/${message.offset}`)
    } catch (error) {
      this.#stats.rejected++
      return { reject: `no usable key: ${messageOf(error)}` }
    }
    try {
      return { key, payload: this.#options.decode(message) }
    } catch (error) {
      this.#stats.rejected++
      return { reject: `cannot decode the payload: ${messageOf(error)}` }
    }
  }

  deadLetter(message: KafkaMessage, key: string, reason: string, deliveryCount: number): Promise<void> {
    return this.#deadLetters.send(message, key, reason, deliveryCount)
  }

  onError(error: unknown): void {
    if (!this.#stopping) this.#options.onError(error)
  }

  /**
   * A partition got a record past the offset it expected, where the client may have put its fetch
   * position forward (a stale fetch or buffer after a rebalance): the stream is opened again, which
   * reads every partition from the group's committed offsets, never past what is settled.
   */
  reread(): void {
    if (this.#rereading || this.#stopping) return
    this.#rereading = true
    this.#streamEnded?.()
  }

  progressed(): void {
    this.#commits.progressed()
  }

  /** Hand waiting messages to the core on the next turn (coalesced: one pump for many wake-ups). */
  wake(): void {
    if (this.#pumpQueued || this.#stopping) return
    this.#pumpQueued = true
    setImmediate(() => {
      this.#pumpQueued = false
      this.#pump()
    })
  }

  // --- Fetching ---------------------------------------------------------------------------------

  async #open(): Promise<void> {
    const stream = await this.#client.consume({
      topics: this.#options.topics,
      mode: 'committed',
      fallbackMode: this.#options.startFrom,
      autocommit: false,
      isolationLevel: this.#options.readCommitted ? 1 : 0,
      maxWaitTime: this.#options.fetchWaitMs,
    })
    if (this.#stopping) {
      // close() came while the stream was being opened (again): it must not stay open, fetching,
      // nor keep the client from leaving the group.
      await stream.close().catch(() => {})
      this.#ended = Promise.resolve()
      return
    }
    this.#stream = stream
    this.#paused = false
    const ended = new Promise<void>((resolve) => {
      this.#streamEnded = resolve
    })
    // A stream replaced (read again, or failed) hands nothing more over: it may still hold records.
    stream.on('data', (message) => {
      if (this.#stream === stream) this.#received(message)
    })
    stream.on('error', (error) => {
      if (!this.#stopping) this.#options.onError(error)
      this.#streamEnded?.()
    })
    stream.on('close', () => this.#streamEnded?.())
    this.#ended = ended
  }

  #ended: Promise<void> = Promise.resolve()

  /** A stream that fails (the broker went away for longer than the client retries) is opened again. */
  async #superviseStream(): Promise<void> {
    let pause = 250
    while (!this.#stopping) {
      await this.#ended
      if (this.#stopping) break
      await this.#stream?.close().catch(() => {})
      await sleep(pause)
      if (this.#stopping) break
      try {
        const rereading = this.#rereading
        await this.#open()
        if (rereading) {
          this.#rereading = false
          for (const partition of this.#partitions.values()) partition.offsets.reread()
        } else {
          this.#stats.restarts++
        }
        pause = 250
      } catch (error) {
        this.#options.onError(error)
        pause = Math.min(pause * 2, 5000)
        this.#ended = Promise.resolve()
      }
    }
    this.#done()
  }

  #received(message: KafkaMessage): void {
    if (this.#stopping) return
    const id = `${message.topic}:${message.partition}`
    let partition = this.#partitions.get(id)
    if (partition === undefined || partition.revoked) {
      if (!this.#commits.owns(message.topic, message.partition)) return
      partition = new KafkaPartition<P>(message.topic, message.partition, this.#options.byKey, this, false)
      this.#partitions.set(id, partition)
      void this.#anchor(partition)
    }
    partition.add(message)
    if (!this.#paused && this.#held() >= this.#options.maxBuffered) {
      this.#paused = true
      this.#stream?.pause()
    }
    this.wake()
  }

  /**
   * Where a new ownership of `partition` starts: the group's committed offset (or, never committed
   * and startFrom 'earliest', the partition's first offset). The client's stream may hand over
   * records from elsewhere (fetched before the partition was ours again): they are checked against it.
   */
  async #anchor(partition: KafkaPartition<P>): Promise<void> {
    const client = this.#client
    const { topic, partition: index } = partition
    for (let pause = 250; !partition.revoked && !this.#stopping; pause = Math.min(pause * 2, 5000)) {
      try {
        let start: bigint | undefined
        if (client.listCommittedOffsets !== undefined) {
          const committed = (await client.listCommittedOffsets({ topics: [{ topic, partitions: [index] }] }))
            .get(topic)
            ?.at(index)
          if (committed !== undefined && committed >= 0n) start = committed
          else if (this.#options.startFrom === 'earliest' && client.listOffsets !== undefined) {
            const isolationLevel = this.#options.readCommitted ? 1 : 0
            const partitions = { [topic]: [index] }
            const first = await client.listOffsets({ topics: [topic], partitions, isolationLevel, timestamp: -2n })
            start = first.get(topic)?.at(index)
          }
        }
        partition.anchor(start)
        this.wake()
        return
      } catch (error) {
        this.onError(error)
        await sleep(pause)
      }
    }
  }

  #held(): number {
    let held = 0
    for (const partition of this.#partitions.values()) held += partition.held
    return held
  }

  /**
   * Hand waiting messages to the core while it has room: a batch of up to `batchSize`, taken from
   * the partitions in turn, none holding more than its share of the core (so that partitions whose
   * handlers are slow, with the messages queued behind them, never take every slot from the rest).
   * While handlers still run, wait until half the room is free, so that a batch (and its claim)
   * carries many messages rather than the one slot that just freed; but not for long: handlers
   * that take their time must not keep free slots idle.
   */
  #pump(force = false): void {
    if (this.#stopping) return
    const core = this.#core
    const concurrency = core.capacity + core.inFlight
    const want = Math.max(1, Math.min(this.#options.batchSize, Math.floor(concurrency / 2)))
    let active = 0
    for (const partition of this.#partitions.values()) if (partition.held > 0) active++
    const cap = Math.max(1, Math.ceil(concurrency / Math.max(1, active)))
    let exhausted = false
    while (core.capacity > 0 && (force || core.capacity >= want || core.inFlight === 0)) {
      const deliveries: Delivery<P>[] = []
      let room = Math.min(core.capacity, this.#options.batchSize)
      let progress = true
      // Round robin: a few from each partition per pass, so one busy partition does not starve the rest.
      const share = Math.max(1, Math.ceil(room / Math.max(1, active)))
      while (room > 0 && progress) {
        progress = false
        for (const partition of this.#partitions.values()) {
          const taken = partition.take(Math.min(share, room, cap - partition.inCore), deliveries)
          if (taken > 0) progress = true
          room -= taken
          if (room === 0) break
        }
      }
      if (deliveries.length === 0) {
        exhausted = true
        break
      }
      this.#hand(deliveries)
    }
    if (this.#paused && this.#held() < this.#options.maxBuffered / 2) {
      this.#paused = false
      this.#stream?.resume()
    }
    // Free slots left unused, waiting for more to free: use them shortly if nothing settles meanwhile.
    if (!exhausted && core.capacity > 0 && this.#pumpTimer === undefined && this.#waiting()) {
      this.#pumpTimer = setTimeout(() => {
        this.#pumpTimer = undefined
        this.#pump(true)
      }, FORCED_PUMP_MS)
      this.#pumpTimer.unref()
    }
  }

  #waiting(): boolean {
    for (const partition of this.#partitions.values()) if (partition.held > partition.inCore) return true
    return false
  }

  #hand(deliveries: Delivery<P>[]): void {
    if (this.#options.batch) this.#track(this.#core.handleBatch(deliveries))
    else for (const delivery of deliveries) this.#track(this.#core.handle(delivery))
  }

  #track(handling: Promise<unknown>): void {
    const tracked = handling.catch(this.#options.onError).finally(() => this.#handling.delete(tracked))
    this.#handling.add(tracked)
  }

  // --- Rebalances ------------------------------------------------------------------------------

  /**
   * The join completed: commits may go out again, and partitions no longer owned are dropped
   * (their records not yet started withdrawn, nothing of theirs ever committed again).
   */
  #assigned(): void {
    this.#commits.joinedGeneration()
    for (const [id, partition] of this.#partitions) {
      if (this.#commits.owns(partition.topic, partition.partition)) {
        // Still ours, but the client set its fetch position again: the next offset must follow on.
        partition.offsets.verifyNext()
        continue
      }
      if (partition.held > 0) this.#stats.revoked++
      partition.revoke()
      this.#partitions.delete(id)
    }
    this.#commits.progressed()
    this.wake()
  }

  async #close(): Promise<void> {
    // Stop fetching first, then let the core finish or hand back what it holds, then commit what is done.
    this.#stopping = true
    this.#commits.stop()
    if (this.#pumpTimer !== undefined) clearTimeout(this.#pumpTimer)
    await this.#stream?.close().catch(() => {})
    this.#streamEnded?.()
    await this.#core.close()
    await Promise.allSettled(this.#handling)
    await this.#commits.commit().catch(this.#options.onError)
    for (const partition of this.#partitions.values()) partition.revoke()
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    await this.done
  }

  #listen(event: string, listener: () => void): void {
    this.#client.on(event, listener)
    this.#unsubscribe.push(() => this.#client.off(event, listener))
  }
}

/** How long free slots wait for more to free before a smaller batch is handed out. */
const FORCED_PUMP_MS = 20
