// The detector's options, their defaults and their checks.

import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'

export interface AnomalyDetectorOptions {
  /** The length of one sample: rates are counted per window. Default '10s'. */
  window?: Duration
  /** Windows a subject must have been seen for before it may alert (its baseline is learned meanwhile). Default 30. */
  warmup?: number
  /** How many deviations above its baseline a window's count must rise to alert. Default 4. */
  sensitivity?: number
  /** A window with fewer events of a kind never alerts for that kind. Default 20. */
  minEvents?: number
  /** Subjects (scope labels and principals on HTTP routes) kept at most; the least recently seen go first. Default 10 000. */
  maxSubjects?: number
  /** The clock, in ms (tests). Default Date.now. */
  now?: () => number
}

export interface Settings {
  windowMs: number
  warmup: number
  sensitivity: number
  minEvents: number
  maxSubjects: number
  now: () => number
}

export const DEFAULTS = { window: '10s', warmup: 30, sensitivity: 4, minEvents: 20, maxSubjects: 10_000 } as const

export function settingsOf(options: AnomalyDetectorOptions = {}): Settings {
  if (options === null || typeof options !== 'object') throw new TypeError('AnomalyDetector takes an options object')
  const sensitivity = options.sensitivity ?? DEFAULTS.sensitivity
  if (typeof sensitivity !== 'number' || !Number.isFinite(sensitivity) || sensitivity <= 0) {
    throw new RangeError(`sensitivity must be a positive number, got ${String(sensitivity)}`)
  }
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new TypeError('now must be a function returning milliseconds')
  return {
    windowMs: toMs(options.window ?? DEFAULTS.window, 'window'),
    warmup: positiveInteger(options.warmup ?? DEFAULTS.warmup, 'warmup'),
    sensitivity,
    minEvents: positiveInteger(options.minEvents ?? DEFAULTS.minEvents, 'minEvents'),
    maxSubjects: positiveInteger(options.maxSubjects ?? DEFAULTS.maxSubjects, 'maxSubjects'),
    now,
  }
}
