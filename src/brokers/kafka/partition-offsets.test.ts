// PartitionOffsets alone: the position a partition may commit is the first offset whose outcome is
// not durable yet (or the next to fetch once all are), whatever order outcomes arrive in; offsets
// read again are refused; gaps in the offsets (compaction, transaction markers) are stepped over,
// except where the client may have moved its position (a new ownership, a join): there a gap is
// refused until a read again from the committed offset confirms it.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PartitionOffsets } from './partition-offsets.js'

function taken(...offsets: number[]): PartitionOffsets {
  const offsets_ = new PartitionOffsets()
  for (const offset of offsets) expect(offsets_.take(BigInt(offset))).toBe(true)
  return offsets_
}

describe('PartitionOffsets', () => {
  it('has nothing to commit before anything was fetched', () => {
    expect(new PartitionOffsets().commitPoint()).toBeUndefined()
  })

  it('commits the first unfinished offset while one is unfinished, and the next to fetch once all are done', () => {
    const offsets = taken(10, 11, 12)
    // Nothing done: the position is the first offset fetched (what the group would read again).
    expect(offsets.commitPoint()).toBe(10n)
    offsets.committed(10n)
    expect(offsets.commitPoint()).toBeUndefined()
    offsets.done(10n)
    expect(offsets.commitPoint()).toBe(11n)
    offsets.done(11n)
    offsets.done(12n)
    expect(offsets.commitPoint()).toBe(13n)
    expect(offsets.pending).toBe(0)
  })

  it('never moves past an unfinished offset when later ones finish first', () => {
    const offsets = taken(0, 1, 2, 3, 4)
    offsets.done(4n)
    offsets.done(2n)
    offsets.done(3n)
    // 0 is still running: 2, 3 and 4 are durable but the group may only say "read again from 0".
    expect(offsets.commitPoint()).toBe(0n)
    offsets.committed(0n)
    offsets.done(1n)
    expect(offsets.commitPoint()).toBeUndefined() // 0 still holds the position
    expect(offsets.pending).toBe(1)
    offsets.done(0n)
    expect(offsets.commitPoint()).toBe(5n)
  })

  it('refuses offsets read again (after a rebalance or a reconnect), done or not', () => {
    const offsets = taken(5, 6, 7)
    offsets.done(5n)
    expect(offsets.commitPoint()).toBe(6n)
    for (const again of [5n, 6n, 7n, 0n]) expect(offsets.take(again)).toBe(false)
    expect(offsets.pending).toBe(2)
    expect(offsets.take(8n)).toBe(true)
    expect(offsets.pending).toBe(3)
  })

  it('steps over gaps in the offsets: a compacted record or a transaction marker is never waited for', () => {
    const offsets = taken(0, 1, 5, 9)
    offsets.done(0n)
    offsets.done(1n)
    expect(offsets.commitPoint()).toBe(5n) // 2, 3 and 4 do not exist
    offsets.done(9n)
    expect(offsets.commitPoint()).toBe(5n)
    offsets.done(5n)
    expect(offsets.commitPoint()).toBe(10n)
  })

  it('starts a new ownership at the committed offset: below it refused, past it a gap, never committed past', () => {
    const offsets = new PartitionOffsets()
    offsets.expect(5n)
    expect(offsets.take(3n)).toBe(false)
    expect(offsets.gap).toBe(false)
    expect(offsets.take(8n)).toBe(false) // the client's position jumped: 5, 6 and 7 were not read
    expect(offsets.gap).toBe(true)
    expect(offsets.take(9n)).toBe(false)
    expect(offsets.pending).toBe(0)
    expect(offsets.commitPoint()).toBe(5n)
    offsets.committed(5n)
    expect(offsets.take(5n)).toBe(true) // the record expected came after all
    expect(offsets.gap).toBe(false)
    expect(offsets.take(7n)).toBe(true) // and from there the fetches chain: gaps are real
    offsets.done(5n)
    offsets.done(7n)
    expect(offsets.commitPoint()).toBe(8n)
  })

  it('accepts a gap at the expected position once the partition was read again from the committed offset', () => {
    const offsets = new PartitionOffsets()
    offsets.expect(5n)
    expect(offsets.take(7n)).toBe(false)
    expect(offsets.gap).toBe(true)
    offsets.reread()
    expect(offsets.gap).toBe(false)
    expect(offsets.take(4n)).toBe(false)
    expect(offsets.take(7n)).toBe(true)
    offsets.done(7n)
    expect(offsets.commitPoint()).toBe(8n)
  })

  it('after a join, the next offset of a partition still owned must follow on from the last one', () => {
    const offsets = taken(0, 1)
    offsets.verifyNext()
    expect(offsets.take(1n)).toBe(false)
    expect(offsets.gap).toBe(false)
    expect(offsets.take(4n)).toBe(false)
    expect(offsets.gap).toBe(true)
    offsets.done(0n)
    offsets.done(1n)
    expect(offsets.commitPoint()).toBe(2n)
    expect(offsets.take(2n)).toBe(true)
    expect(offsets.take(4n)).toBe(true)
  })

  it('offers the same position again until a commit of it succeeded, and never one at or below the last committed', () => {
    const offsets = taken(0, 1)
    offsets.done(0n)
    expect(offsets.commitPoint()).toBe(1n)
    // The commit failed: nothing was marked committed, so the position is offered again.
    expect(offsets.commitPoint()).toBe(1n)
    offsets.committed(1n)
    expect(offsets.commitPoint()).toBeUndefined()
    // A stale success arriving late does not move the committed position back.
    offsets.committed(0n)
    expect(offsets.commitPoint()).toBeUndefined()
  })

  it('ignores an outcome below the commit point (a late duplicate ack)', () => {
    const offsets = taken(0, 1, 2)
    offsets.done(0n)
    offsets.done(1n)
    expect(offsets.commitPoint()).toBe(2n)
    offsets.done(0n)
    expect(offsets.pending).toBe(1)
    expect(offsets.commitPoint()).toBe(2n)
  })

  it('for any order of outcomes, never offers a position past an offset that is not done', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 40 }),
        fc.func(fc.boolean()),
        (raw, commitNow) => {
          const fetched = [...raw].sort((a, b) => a - b).map(BigInt)
          const offsets = new PartitionOffsets()
          for (const offset of fetched) offsets.take(offset)
          const order = [...raw].map(BigInt) // outcomes in arrival order, not offset order
          const done = new Set<bigint>()
          let last = -1n
          for (const offset of order) {
            offsets.done(offset)
            done.add(offset)
            if (!commitNow(offset)) continue
            const point = offsets.commitPoint()
            if (point === undefined) continue
            // Every fetched offset below the point is done, and the point only moves forward.
            for (const o of fetched) if (o < point) expect(done.has(o)).toBe(true)
            expect(point > last).toBe(true)
            last = point
            offsets.committed(point)
          }
          const final = offsets.commitPoint() ?? last
          expect(final).toBe((fetched.at(-1) as bigint) + 1n)
          expect(offsets.pending).toBe(0)
        },
      ),
    )
  })
})
