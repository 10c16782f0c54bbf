import { afterEach, describe, expect, it, vi } from 'vitest'
import { Repeating } from './repeating.js'

/** A job that counts its ticks; `stopAfter` ticks, it stops itself from inside its tick. */
class Counter extends Repeating {
  ticks = 0
  constructor(
    readonly intervalMs: number,
    readonly stopAfter = Number.POSITIVE_INFINITY,
  ) {
    super()
  }
  start(): this {
    this.startRepeating(this.intervalMs)
    return this
  }
  stop(): void {
    this.stopRepeating()
  }
  protected override tick(): void {
    this.ticks++
    if (this.ticks >= this.stopAfter) this.stop()
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('Repeating (shared interval timers)', () => {
  it('ticks every job of an interval once per interval, and a stopped job never again', () => {
    vi.useFakeTimers()
    const jobs = Array.from({ length: 50 }, () => new Counter(100).start())
    vi.advanceTimersByTime(350)
    expect(jobs.map((job) => job.ticks)).toEqual(Array(50).fill(3))
    const stopped = jobs.filter((_, i) => i % 2 === 0)
    for (const job of stopped) job.stop()
    vi.advanceTimersByTime(200)
    expect(stopped.map((job) => job.ticks)).toEqual(Array(25).fill(3))
    expect(jobs.filter((_, i) => i % 2 === 1).map((job) => job.ticks)).toEqual(Array(25).fill(5))
    for (const job of jobs) job.stop()
  })

  it('counts each job from its own start, as setInterval does', () => {
    vi.useFakeTimers()
    const early = new Counter(100).start()
    vi.advanceTimersByTime(60)
    const late = new Counter(100).start()
    vi.advanceTimersByTime(50) // 110 ms after the first start, 50 ms after the second
    expect([early.ticks, late.ticks]).toEqual([1, 0])
    vi.advanceTimersByTime(60)
    expect([early.ticks, late.ticks]).toEqual([1, 1])
    early.stop()
    late.stop()
  })

  it('keeps intervals apart and lets a job stop itself from its tick', () => {
    vi.useFakeTimers()
    const fast = new Counter(10, 4).start()
    const slow = new Counter(25).start()
    vi.advanceTimersByTime(100)
    expect(fast.ticks).toBe(4)
    expect(slow.ticks).toBe(4)
    slow.stop()
  })

  it('starts again after a stop, and ignores a second start', () => {
    vi.useFakeTimers()
    const job = new Counter(10).start().start()
    vi.advanceTimersByTime(25)
    expect(job.ticks).toBe(2)
    job.stop()
    job.stop()
    vi.advanceTimersByTime(50)
    expect(job.ticks).toBe(2)
    job.start()
    vi.advanceTimersByTime(10)
    expect(job.ticks).toBe(3)
    job.stop()
  })

  it('waits out an interval longer than setTimeout allows instead of firing every millisecond', () => {
    vi.useFakeTimers()
    const job = new Counter(2 ** 40).start()
    const timers = vi.spyOn(globalThis, 'setTimeout')
    vi.advanceTimersByTime(10_000)
    expect(job.ticks).toBe(0)
    expect(timers.mock.calls.length).toBeLessThanOrEqual(1)
    job.stop()
  })

  it('follows fake timers installed after its timer was set on real ones', () => {
    const before = new Counter(1000).start() // sets a real timer for the interval
    vi.useFakeTimers()
    const after = new Counter(1000).start()
    vi.advanceTimersByTime(2500)
    expect(after.ticks).toBe(2)
    before.stop()
    after.stop()
  })

  it('ticks on real timers too', async () => {
    const job = new Counter(5).start()
    while (job.ticks < 3) await new Promise((resolve) => setTimeout(resolve, 5))
    job.stop()
    const ticks = job.ticks
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(job.ticks).toBe(ticks)
  })
})
