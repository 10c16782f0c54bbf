// The rules of the detector, per subject and kind: when a window's count raises an alert (as
// events arrive, at most once per episode), when an episode ends, and what the baseline learns.
//
// - Alert: the baseline is learned (≥ warmup windows), the window holds ≥ minEvents events of the
//   kind, their count exceeds mean + sensitivity × max(deviation, √mean) (the √mean floor is the
//   Poisson noise of a count, so perfectly steady traffic does not make +1 event an alarm), and
//   their share of the calls exceeds its own baseline by sensitivity deviations. The share guard
//   keeps a surge of ordinary traffic, which brings proportionally more duplicates, from passing
//   for a replay storm; where the share cannot tell (its limit is 1 or more: every call is a
//   replay, or calls were never fed), the count alone decides.
// - An episode ends with the first completed window back within the baseline (fewer than
//   minEvents events, or a count within the limit); idle windows are such windows. `resolved`.
// - The baseline learns every window outside an episode and none inside one (the alerting window
//   included), so a long storm does not become the new normal in minutes. A storm that lasts
//   RELEARN_AFTER windows (an hour of 10 s windows) is taken as a new normal after all: the
//   baseline restarts, learning it afresh through a new warm-up (`resolved` with `relearned`).

import type { Anomaly, AnomalyKind } from '../core/anomaly.js'
import { type Subject, Track } from './subject.js'

/** Completed windows of one episode after which its level is taken as the new normal. */
export const RELEARN_AFTER = 360

/** What `resolved` reports: an episode ended. */
export interface AnomalyResolved extends Omit<Anomaly, 'rate' | 'baseline'> {
  /** `calm`: a window came back within the baseline; `relearned`: the episode lasted so long that its level is the new baseline (learned afresh). */
  reason: 'calm' | 'relearned'
}

export interface JudgeSettings {
  windowMs: number
  warmup: number
  sensitivity: number
  minEvents: number
  now: () => number
  raise: (anomaly: Anomaly) => void
  resolve: (resolved: AnomalyResolved) => void
}

export class Judge {
  readonly #s: JudgeSettings
  readonly #perSecond: number

  constructor(settings: JudgeSettings) {
    this.#s = settings
    this.#perSecond = 1000 / settings.windowMs
  }

  /** One call, a replay or a mismatch when `kind` says so, in the subject's current window. */
  count(subject: Subject, kind: AnomalyKind | undefined): void {
    subject.calls++
    if (kind === undefined) return
    const track = this.#track(subject, kind)
    track.count++
    if (track.inEpisode || track.count <= track.countLimit || track.count < this.#s.minEvents) return
    if (track.shareLimit < 1 && track.count / subject.calls <= track.shareLimit) return
    track.inEpisode = true
    track.episodeWindows = 0
    const anomaly: Anomaly = {
      kind,
      subject: subject.subject,
      scope: subject.scope,
      rate: track.count * this.#perSecond,
      baseline: track.rate.mean * this.#perSecond,
      at: this.#s.now(),
    }
    if (subject.principal !== undefined) anomaly.principal = subject.principal
    this.#s.raise(anomaly)
  }

  /** Close the subject's current window and the idle ones up to `window`, which becomes current. */
  roll(subject: Subject, window: number): void {
    if (window <= subject.window) return
    const idle = window - subject.window - 1
    if (subject.replays !== undefined) this.#roll(subject, subject.replays, idle)
    if (subject.mismatches !== undefined) this.#roll(subject, subject.mismatches, idle)
    subject.windows += 1 + idle
    if (subject.calls > 0) subject.callWindows++
    subject.calls = 0
    subject.window = window
  }

  /** The subject's track of `kind`, made on its first event. */
  #track(subject: Subject, kind: AnomalyKind): Track {
    const field = kind === 'replays' ? 'replays' : 'mismatches'
    let track = subject[field]
    if (track === undefined) {
      track = new Track(kind, subject.windows, subject.callWindows)
      this.#limits(track)
      subject[field] = track
    }
    return track
  }

  #roll(subject: Subject, track: Track, idle: number): void {
    this.#close(subject, track, track.count, subject.calls)
    if (idle > 0) this.#idle(subject, track, idle)
    track.count = 0
    this.#limits(track)
  }

  /** Fix the limits of a window about to open. */
  #limits(track: Track): void {
    const { sensitivity, warmup } = this.#s
    if (track.rate.samples < warmup) {
      track.countLimit = Number.POSITIVE_INFINITY
      return
    }
    const { mean, deviation } = track.rate
    track.countLimit = mean + sensitivity * Math.max(deviation, Math.sqrt(mean))
    track.shareLimit = track.share.samples === 0 ? 1 : track.share.mean + sensitivity * track.share.deviation
  }

  #close(subject: Subject, track: Track, count: number, calls: number): void {
    if (track.inEpisode) {
      if (count >= this.#s.minEvents && count > track.countLimit) {
        if (++track.episodeWindows < RELEARN_AFTER) return
        // The storm is the new normal: learned afresh from this window on.
        track.relearn()
        this.#resolved(subject, track, 'relearned')
      } else {
        track.inEpisode = false
        this.#resolved(subject, track, 'calm')
      }
    }
    track.rate.learn(count)
    if (calls > 0) track.share.learn(count / calls)
  }

  #idle(subject: Subject, track: Track, windows: number): void {
    if (track.inEpisode) {
      track.inEpisode = false
      this.#resolved(subject, track, 'calm')
    }
    track.rate.learnZeros(windows)
  }

  #resolved(subject: Subject, track: Track, reason: AnomalyResolved['reason']): void {
    const resolved: AnomalyResolved = {
      kind: track.kind,
      subject: subject.subject,
      scope: subject.scope,
      at: this.#s.now(),
      reason,
    }
    if (subject.principal !== undefined) resolved.principal = subject.principal
    this.#s.resolve(resolved)
  }
}
