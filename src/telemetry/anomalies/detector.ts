// The anomaly detector: counts each subject's calls, replays and mismatches per window, learns
// their baseline and raises `anomaly` when a window leaves it (the rules are in judge.ts, the
// baseline in baseline.ts, the bounded subject table in subjects.ts).

import { Emitter } from '../../core/emitter.js'
import type { Idempotency } from '../../core/idempotency.js'
import type { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { ANONYMOUS } from '../../http/core/request-identity.js'
import { ANOMALY_SOURCE, type Anomaly, type AnomalySource } from '../core/anomaly.js'
import { scopeLabel } from '../core/labels.js'
import { targetOf } from '../core/targets.js'
import { type AnomalyResolved, Judge } from './judge.js'
import { type AnomalyDetectorOptions, type Settings, settingsOf } from './options.js'
import type { Subject } from './subject.js'
import { Subjects } from './subjects.js'

/** What `observe` is told: a call that was neither a replay nor a mismatch, a replay, or a mismatch (each is one call). */
export type ObservedKind = 'call' | 'replay' | 'mismatch'

export interface AnomalyDetectorEvents {
  /** A subject's replays or mismatches left their baseline: once per episode. */
  anomaly: Anomaly
  /** The episode of an earlier `anomaly` ended. */
  resolved: AnomalyResolved
}

const CALL = 0
const REPLAY = 1
const MISMATCH = 2
const KINDS = new Map<unknown, number>([
  ['call', CALL],
  ['replay', REPLAY],
  ['mismatch', MISMATCH],
])

interface Watching {
  refs: number
  stop: () => void
}

/**
 * Watches the replay and mismatch rates of every scope (for HTTP: every route, and every caller
 * on it) and raises `anomaly` when one leaves its learned baseline: a client stuck in a retry
 * loop, a producer redelivering a backlog, keys reused across payloads by a bug. It implements
 * `AnomalySource`, so `idem/metrics` and `idem/logging` can `watch()` it.
 *
 * @example
 * ```ts
 * import { AnomalyDetector } from 'idem/anomalies'
 *
 * const detector = new AnomalyDetector({ window: '10s' })
 * detector.watch(idem) // or an HttpIdempotency: its routes and their callers
 * detector.on('anomaly', (a) => alert(`${a.kind} on ${a.scope}: ${a.rate}/s, normally ${a.baseline}/s`))
 * // …
 * detector.close()
 * ```
 */
export class AnomalyDetector implements AnomalySource {
  readonly [ANOMALY_SOURCE] = true as const
  readonly #settings: Settings
  readonly #events = new Emitter<AnomalyDetectorEvents>()
  readonly #subjects: Subjects
  readonly #judge: Judge
  readonly #watching = new Map<Idempotency, Watching>()
  readonly #timer: NodeJS.Timeout
  #closed = false

  constructor(options: AnomalyDetectorOptions = {}) {
    const settings = settingsOf(options)
    this.#settings = settings
    this.#subjects = new Subjects(settings.maxSubjects)
    this.#judge = new Judge({
      ...settings,
      raise: (anomaly) => this.#events.emit('anomaly', anomaly),
      resolve: (resolved) => this.#events.emit('resolved', resolved),
    })
    // Closes the windows of subjects gone quiet, so that their episodes resolve without traffic.
    this.#timer = setInterval(() => this.#sweep(), settings.windowMs)
    this.#timer.unref()
  }

  /** Subjects tracked now (scope labels and principals), at most `maxSubjects`. */
  get size(): number {
    return this.#subjects.size
  }

  /** Listen to `anomaly` or `resolved`; returns a function that stops listening. A throwing listener is ignored. */
  on<K extends keyof AnomalyDetectorEvents>(name: K, listener: (event: AnomalyDetectorEvents[K]) => void): () => void {
    return this.#events.on(name, listener)
  }

  off<K extends keyof AnomalyDetectorEvents>(name: K, listener: (event: AnomalyDetectorEvents[K]) => void): void {
    this.#events.off(name, listener)
  }

  /**
   * Observe the runs of an `Idempotency`, or of an `HttpIdempotency`'s `idem` (each watched once
   * however often it is given): every call, its replays and its mismatches. Returns a function
   * that stops watching.
   */
  watch(target: Idempotency | HttpIdempotency): () => void {
    if (this.#closed) throw new Error('This AnomalyDetector is closed')
    const found = targetOf(target, 'AnomalyDetector.watch')
    let idem: Idempotency
    if (found.kind === 'idempotency') idem = found.idem
    else if (found.kind === 'http') idem = found.http.idem
    else {
      throw new TypeError(
        `AnomalyDetector.watch takes an Idempotency or an HttpIdempotency, not ${found.kind === 'anomalies' ? 'an anomaly source' : `a ${found.kind}`} (a consumer's runs are on its idem)`,
      )
    }
    let watching = this.#watching.get(idem)
    if (watching === undefined) {
      watching = { refs: 0, stop: this.#listen(idem) }
      this.#watching.set(idem, watching)
    }
    watching.refs++
    let stopped = false
    return () => {
      if (stopped) return
      stopped = true
      const current = this.#watching.get(idem)
      if (current === undefined || --current.refs > 0) return
      current.stop()
      this.#watching.delete(idem)
    }
  }

  /**
   * Count one call of `scope` (an HTTP scope counts for its route and for its principal): a
   * `replay`, a `mismatch`, or any other `call`. `at` (ms) defaults to now; what `watch` feeds.
   */
  observe(scope: string, kind: ObservedKind, at?: number): void {
    const code = KINDS.get(kind)
    if (code === undefined) throw new TypeError(`observe takes 'call', 'replay' or 'mismatch', got ${String(kind)}`)
    if (typeof scope !== 'string') throw new TypeError(`observe takes a scope string, got ${typeof scope}`)
    this.#observe(scope, code, at ?? this.#settings.now())
  }

  /** Stop watching, stop the timer and forget every subject. Later events are ignored. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    for (const watching of this.#watching.values()) watching.stop()
    this.#watching.clear()
    this.#subjects.clear()
  }

  #listen(idem: Idempotency): () => void {
    const offs = [
      idem.on('executed', (event) => this.#observe(event.scope, CALL, this.#settings.now())),
      idem.on('replayed', (event) => this.#observe(event.scope, REPLAY, this.#settings.now())),
      idem.on('mismatch', (event) => this.#observe(event.scope, MISMATCH, this.#settings.now())),
      // A caller that waits polls: only the answer that ends a call counts.
      idem.on('in_progress', (event) => {
        if (!event.waiting) this.#observe(event.scope, CALL, this.#settings.now())
      }),
    ]
    return () => {
      for (const off of offs) off()
    }
  }

  #observe(scope: string, code: number, at: number): void {
    if (this.#closed) return
    const window = Math.floor(at / this.#settings.windowMs)
    const label = scopeLabel(scope)
    this.#count(this.#subjects.scope(label, window), code, window)
    if (label === scope) return
    const first = scope.indexOf('|')
    const second = scope.indexOf('|', first + 1)
    if (second - first - 1 === ANONYMOUS.length && scope.startsWith(ANONYMOUS, first + 1)) return
    const subject = this.#subjects.principal(scope, label, window)
    if (subject !== undefined) this.#count(subject, code, window)
  }

  #count(subject: Subject, code: number, window: number): void {
    this.#judge.roll(subject, window)
    this.#judge.count(subject, code === REPLAY ? 'replays' : code === MISMATCH ? 'mismatches' : undefined)
  }

  #sweep(): void {
    const window = Math.floor(this.#settings.now() / this.#settings.windowMs)
    for (const subject of this.#subjects) this.#judge.roll(subject, window)
  }
}
