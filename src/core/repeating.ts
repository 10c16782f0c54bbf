// `Repeating`: something to do every interval, on one shared timer per interval. Lease keepers
// renew on it, and the consumer's `extend()` calls run on it.

/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Every repeating job of one interval, in order of their next due time, and the one timer that serves them. */
interface IntervalList {
  readonly intervalMs: number
  head: Repeating | undefined
  tail: Repeating | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  /** The time (performance.now()) the timer was set for: the head's due time, unless that was too far. */
  armedFor: number
  /** The timer functions that set it: a test that installs fake timers later gets a timer of its own. */
  armedWith: typeof setTimeout
  disarm: typeof clearTimeout
  readonly fire: () => void
}

/**
 * Something to do every `intervalMs` between `startRepeating` and `stopRepeating`, as with
 * setInterval, but on one shared timer per interval: jobs of the same interval are due in the
 * order they started, so a linked list kept sorted by due time costs one step per insert (from
 * the tail) and its head says when the timer fires. Only a clock that changes under the list (a
 * test installing fake timers, whose performance.now() starts again near 0) makes an insert walk.
 * Starting and stopping are a few field writes, where a setInterval per job allocated a timer and
 * queued it in libuv's list, for jobs that almost always end long before their first tick.
 */
export abstract class Repeating {
  static readonly #lists = new Map<number, IntervalList>()
  #list: IntervalList | undefined = undefined
  #prev: Repeating | undefined = undefined
  #next: Repeating | undefined = undefined
  #due = 0

  /** Called every interval while started. Must not throw. */
  protected abstract tick(): void

  protected startRepeating(intervalMs: number): void {
    if (this.#list !== undefined) return
    let list = Repeating.#lists.get(intervalMs)
    if (list === undefined) {
      const created: IntervalList = {
        intervalMs,
        head: undefined,
        tail: undefined,
        timer: undefined,
        armedFor: 0,
        armedWith: setTimeout,
        disarm: clearTimeout,
        fire: () => Repeating.#fire(created),
      }
      list = created
      Repeating.#lists.set(intervalMs, list)
    }
    this.#due = performance.now() + intervalMs
    Repeating.#append(list, this)
    if (list.timer === undefined) {
      Repeating.#arm(list)
    } else if (list.armedWith !== setTimeout || this.#due < list.armedFor) {
      list.disarm(list.timer)
      Repeating.#arm(list)
    }
  }

  /** Idempotent. The shared timer is left to fire: it then finds nothing due and sets itself for the next job, if any. */
  protected stopRepeating(): void {
    const list = this.#list
    if (list !== undefined) Repeating.#unlink(list, this)
  }

  /** Into its place by due time: after the last job due no later than it (the tail, as a rule). */
  static #append(list: IntervalList, job: Repeating): void {
    let prev = list.tail
    while (prev !== undefined && prev.#due > job.#due) prev = prev.#prev
    const next = prev === undefined ? list.head : prev.#next
    job.#list = list
    job.#prev = prev
    job.#next = next
    if (prev === undefined) list.head = job
    else prev.#next = job
    if (next === undefined) list.tail = job
    else next.#prev = job
  }

  static #unlink(list: IntervalList, job: Repeating): void {
    const prev = job.#prev
    const next = job.#next
    if (prev === undefined) list.head = next
    else prev.#next = next
    if (next === undefined) list.tail = prev
    else next.#prev = prev
    job.#list = undefined
    job.#prev = undefined
    job.#next = undefined
  }

  static #arm(list: IntervalList): void {
    const head = list.head
    if (head === undefined) {
      // Nothing left to serve: forget the list, so that intervals used once do not pile up.
      list.timer = undefined
      Repeating.#lists.delete(list.intervalMs)
      return
    }
    const now = performance.now()
    // Capped at setTimeout's maximum (which would otherwise fire after 1 ms): a later due time is
    // simply not due yet when the timer fires, and it is set again.
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(head.#due - now)))
    list.armedFor = Math.min(head.#due, now + delay)
    list.armedWith = setTimeout
    list.disarm = clearTimeout
    list.timer = setTimeout(list.fire, delay)
    list.timer.unref?.()
  }

  static #fire(list: IntervalList): void {
    list.timer = undefined
    // At least the due time the timer was set for: a timer never runs its head late twice, and a
    // clock that the timers do not follow (a test's fake timers) still gets its ticks.
    const now = Math.max(performance.now(), list.armedFor)
    try {
      for (let job = list.head; job !== undefined && job.#due <= now; job = list.head) {
        // Rescheduled before it runs, as setInterval does, so a tick that stops its job wins.
        Repeating.#unlink(list, job)
        job.#due = now + list.intervalMs
        Repeating.#append(list, job)
        job.tick()
      }
    } finally {
      if (list.timer === undefined) Repeating.#arm(list)
    }
  }
}
