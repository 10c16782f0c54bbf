// One partition's offsets between fetch and commit. Kafka commits a position, not single messages:
// the group may only move past offsets whose outcome is durable, so the position committed is the
// first offset still unfinished (or the next one to fetch once all are). An offset done out of order
// waits for the ones before it; after a crash they are read again and replay from their records.

export class PartitionOffsets {
  /** Offsets fetched and not yet below the commit point, in order, each with whether it is done. */
  readonly #held: bigint[] = []
  readonly #done = new Set<bigint>()
  /** The offset after the last one fetched: what the stream reads next. */
  #next: bigint | undefined
  /** The last position committed (or found committed). */
  #committed: bigint | undefined

  /**
   * Take a fetched offset. False for one already held or done (the stream read it again after a
   * rebalance or a reconnect): it must not be handed out twice.
   */
  take(offset: bigint): boolean {
    if (this.#next !== undefined && offset < this.#next) return false
    this.#held.push(offset)
    this.#next = offset + 1n
    return true
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
