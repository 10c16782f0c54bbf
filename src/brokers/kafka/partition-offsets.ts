// One partition's offsets between fetch and commit. Kafka commits a position, not single messages:
// the group may only move past offsets whose outcome is durable, so the position committed is the
// first offset still unfinished (or the next one to fetch once all are). An offset done out of order
// waits for the ones before it; after a crash they are read again and replay from their records.
// Gaps in the offsets are real (transaction markers, compaction) while the stream chains its
// fetches; where the client may have put its fetch position somewhere else (a new ownership of the
// partition, a join), the next offset must be the expected one, or be confirmed by a read again
// from the committed offset: a position moved forward would otherwise commit past unread records.

export class PartitionOffsets {
  /** Offsets fetched and not yet below the commit point, in order, each with whether it is done. */
  readonly #held: bigint[] = []
  readonly #done = new Set<bigint>()
  /** The offset after the last one fetched: what the stream reads next. */
  #next: bigint | undefined
  /** The last position committed (or found committed). */
  #committed: bigint | undefined
  /** The next offset taken must be `#next` exactly: one past it is a gap to confirm. */
  #verify = false
  #gap = false

  /**
   * Take a fetched offset. False for one already held or done (the stream read it again after a
   * rebalance or a reconnect): it must not be handed out twice. False too for one past the expected
   * position while that is to be verified (`gap` then says so): what lies between was not read.
   */
  take(offset: bigint): boolean {
    if (this.#next !== undefined && offset < this.#next) return false
    if (this.#verify && this.#next !== undefined && offset > this.#next) {
      this.#gap = true
      return false
    }
    this.#verify = false
    this.#gap = false
    this.#held.push(offset)
    this.#next = offset + 1n
    return true
  }

  /**
   * A new ownership of the partition starts at `position` (the group's committed offset): offsets
   * below it are refused, and the first one taken must be `position` itself (or be confirmed).
   */
  expect(position: bigint): void {
    if (this.#next !== undefined) return
    this.#next = position
    this.#verify = true
  }

  /** The client may have moved its fetch position (a join): the next offset must be the expected one. */
  verifyNext(): void {
    if (this.#next !== undefined) this.#verify = true
  }

  /** An offset past the expected one was refused: the partition must be read again from its committed offset. */
  get gap(): boolean {
    return this.#gap
  }

  /**
   * The stream was opened again, from the group's committed offsets (never past `#next`, since
   * nothing past it was taken): the first offset at or past the expected one is the next that exists.
   */
  reread(): void {
    this.#verify = false
    this.#gap = false
  }

  /** The outcome of `offset` is durable (executed, replayed or dead-lettered). */
  done(offset: bigint): void {
    if (this.#held.length === 0 || offset < (this.#held[0] as bigint)) return
    this.#done.add(offset)
  }

  /** Offsets held and not done. */
  get pending(): number {
    return this.#held.length - this.#done.size
  }

  /**
   * The position the group may commit now, if it moved since the last commit: the first offset not
   * done, or the next to fetch when every held one is. Drops the done prefix.
   */
  commitPoint(): bigint | undefined {
    let i = 0
    while (i < this.#held.length && this.#done.has(this.#held[i] as bigint)) {
      this.#done.delete(this.#held[i] as bigint)
      i++
    }
    if (i > 0) this.#held.splice(0, i)
    const point = this.#held[0] ?? this.#next
    if (point === undefined || (this.#committed !== undefined && point <= this.#committed)) return undefined
    return point
  }

  /** `point` was committed. */
  committed(point: bigint): void {
    if (this.#committed === undefined || point > this.#committed) this.#committed = point
  }
}
