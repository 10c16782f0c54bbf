// The in-memory window: exact inside the window, forgetting past it, bounded by one window's events.

import { describe, expect, it } from 'vitest'
import { memoryWindow } from './memory-window.js'
import { DedupWindow } from './window.js'

/** A clock the test moves by hand. */
function manualClock() {
  const clock = { t: 1_000, now: () => clock.t }
  return clock
}

describe('DedupWindow on memoryWindow()', () => {
  it('reports a repeat inside the window and none for another id or source', async () => {
    const clock = manualClock()
    const window = new DedupWindow({ store: memoryWindow({ now: clock.now }), window: '10s' })
    expect(await window.seen('sensor-1', 'e1')).toBe(false)
    clock.t += 9_999
    expect(await window.seen('sensor-1', 'e1')).toBe(true)
    expect(await window.seen('sensor-2', 'e1')).toBe(false)
    expect(await window.seen('sensor-1', 'e2')).toBe(false)
  })

  it('counts the window from the first sight: a repeat does not extend it, and past it the id is new', async () => {
    const clock = manualClock()
    const window = new DedupWindow({ store: memoryWindow({ now: clock.now }), window: 1_000 })
    expect(await window.seen('s', 'e')).toBe(false)
    clock.t += 900
    expect(await window.seen('s', 'e')).toBe(true)
    clock.t += 100 // exactly one window after the first sight
    expect(await window.seen('s', 'e')).toBe(false)
    clock.t += 999
    expect(await window.seen('s', 'e')).toBe(true)
  })

  it('keeps sources apart whatever characters they contain', async () => {
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    expect(await window.seen('a:b', 'c')).toBe(false)
    expect(await window.seen('a', 'b:c')).toBe(false)
    expect(await window.seen('a:b', 'c')).toBe(true)
  })

  it('holds only the events of one window, however many went by', async () => {
    const clock = manualClock()
    const store = memoryWindow({ now: clock.now })
    const window = new DedupWindow({ store, window: 1_000 })
    // 100 events per ms for 1 000 ms, then 500 ms more: a window never holds more than 1 000 ms of them.
    for (let ms = 0; ms < 1_000; ms++) {
      await window.seenMany(Array.from({ length: 100 }, (_, i) => ({ source: `s${i % 8}`, id: `${ms}-${i}` })))
      clock.t += 1
    }
    // A window after the first millisecond's events, they are gone: the window ends exactly.
    expect(store.size()).toBe(99_900)
    for (let ms = 0; ms < 500; ms++) {
      await window.seenMany(Array.from({ length: 100 }, (_, i) => ({ source: `s${i % 8}`, id: `late-${ms}-${i}` })))
      clock.t += 1
    }
    // Only the last 1 000 ms: the 50 000 late events and the early ones of its first 499 ms.
    expect(store.size()).toBe(99_900)
    clock.t += 1_000
    expect(store.size()).toBe(0)
  })

  it('answers a batch in order, a repeat inside the batch counting as one', async () => {
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    await window.seen('s', 'old')
    const answers = await window.seenMany([
      { source: 's', id: 'old' },
      { source: 's', id: 'new' },
      { source: 's', id: 'new' },
      { source: 't', id: 'new' },
    ])
    expect(answers).toEqual([true, false, true, false])
    expect(await window.seenMany([])).toEqual([])
  })

  it('forgets an id on request, and only that id', async () => {
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    await window.seenMany([
      { source: 's', id: 'a' },
      { source: 's', id: 'b' },
    ])
    await window.forget('s', 'a')
    expect(
      await window.seenMany([
        { source: 's', id: 'a' },
        { source: 's', id: 'b' },
      ]),
    ).toEqual([false, true])
  })

  it('refuses a missing store, a bad window and an empty id', async () => {
    expect(() => new DedupWindow({ store: memoryWindow(), window: '10 parsecs' })).toThrow(RangeError)
    expect(() => new DedupWindow({ window: '1m' } as never)).toThrow(/needs \{ store/)
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    await expect(window.seen('s', '')).rejects.toThrow(TypeError)
  })
})
