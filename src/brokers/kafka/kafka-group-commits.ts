// The group side of a member: which partitions it owns, and the commits of their positions.
// Commits go out coalesced, one at a time, only while the client is in the generation whose
// assignment the member acts on, only for partitions it owns, and never between the start of a
// rebalance and its join. The positions themselves come from each partition's PartitionOffsets.

import type { KafkaCommitOffset, KafkaConsumerClient } from './kafka-driver.js'
import type { KafkaPartition } from './kafka-partition.js'

export interface GroupCommitsOptions {
  commitIntervalMs: number
  onError(error: unknown): void
  /** True once the member is closing: failures are no longer reported, nothing more is scheduled. */
  stopping(): boolean
}

export class GroupCommits<P> {
  readonly #client: KafkaConsumerClient
  readonly #partitions: ReadonlyMap<string, KafkaPartition<P>>
  readonly #options: GroupCommitsOptions
  readonly #counted: () => void
  #timer: NodeJS.Timeout | undefined
  #committing: Promise<void> | undefined
  /** Between the start of a rebalance and the end of the join: ownership is unknown, nothing is committed. */
  #rebalancing = false
  /** The generation and member id of the last join: commits go out only while the client's are still these. */
  #generation: number | undefined
  #memberId: string | null = null
  /** The offsets of the commit in flight (the client may send them again under a new generation). */
  #inFlight: KafkaCommitOffset[] | undefined

  /** `counted` is called once per commit that succeeded. */
  constructor(
    client: KafkaConsumerClient,
    partitions: ReadonlyMap<string, KafkaPartition<P>>,
    options: GroupCommitsOptions,
    counted: () => void,
  ) {
    this.#client = client
    this.#partitions = partitions
    this.#options = options
    this.#counted = counted
  }

  /** True once a join was seen (or acted on at start). */
  get joined(): boolean {
    return this.#generation !== undefined
  }

  owns(topic: string, partition: number): boolean {
    const assignments = this.#client.assignments
    if (assignments === null) return false
    return assignments.some((a) => a.topic === topic && a.partitions.includes(partition))
  }

  /**
   * A rebalance began: until the join completes, which partitions are ours is unknown, so nothing
   * is committed. (Not even what is done: the client has already sent its JoinGroup, a commit would
   * wait behind it on the coordinator's connection, be refused for the old generation, and make the
   * client rejoin once more. What is done and not committed is read again by its next owner, and
   * replays.)
   */
  rebalanceStarted(): void {
    this.#rebalancing = true
  }

  /**
   * The join completed: commits may go out again, for this generation. A commit still in flight
   * keeps only partitions that are still ours: the client retries a commit refused for the old
   * generation under the new one, with the same offsets (the same array: 1.35 reuses it).
   */
  joinedGeneration(): void {
    this.#rebalancing = false
    this.#generation = this.#client.generationId
    this.#memberId = this.#client.memberId
    const inFlight = this.#inFlight
    if (inFlight !== undefined) {
      const kept = inFlight.filter((offset) => this.owns(offset.topic, offset.partition))
      inFlight.splice(0, inFlight.length, ...kept)
    }
  }

  /** An offset became done: commit within `commitIntervalMs` (one commit for everything done meanwhile). */
  progressed(): void {
    if (this.#timer !== undefined || this.#options.stopping()) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.commit()
    }, this.#options.commitIntervalMs)
    this.#timer.unref()
  }

  /** Commit every owned partition whose commit point moved. Commits never overlap. */
  commit(): Promise<void> {
    const previous = this.#committing ?? Promise.resolve()
    const next = previous.then(() => this.#commitOnce())
    this.#committing = next
    return next
  }

  /** No more scheduled commits (a last `commit()` may still be called). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** True while the client is a member of the generation whose assignment this member acts on. */
  #settledInGroup(): boolean {
    return (
      !this.#rebalancing &&
      this.#generation === this.#client.generationId &&
      this.#memberId !== null &&
      this.#memberId === this.#client.memberId
    )
  }

  async #commitOnce(): Promise<void> {
    if (!this.#settledInGroup()) return
    const offsets: KafkaCommitOffset[] = []
    for (const partition of this.#partitions.values()) {
      if (partition.revoked || !this.owns(partition.topic, partition.partition)) continue
      const point = partition.offsets.commitPoint()
      if (point === undefined) continue
      offsets.push({ topic: partition.topic, partition: partition.partition, offset: point, leaderEpoch: -1 })
    }
    if (offsets.length === 0) return
    this.#inFlight = offsets
    try {
      await this.#client.commit({ offsets })
    } catch (error) {
      // Not committed: the positions are read again from the offsets at the next commit.
      if (!this.#options.stopping()) this.#options.onError(error)
      this.progressed()
      return
    } finally {
      this.#inFlight = undefined
    }
    this.#counted()
    // What went out: the offsets as sent, less any a join in between took out.
    for (const { topic, partition, offset } of offsets) {
      this.#partitions.get(`${topic}:${partition}`)?.offsets.committed(offset)
    }
  }
}
