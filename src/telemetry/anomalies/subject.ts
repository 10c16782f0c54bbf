// The state kept per subject (a scope label, or one principal on an HTTP route): the current
// window's counts and, per kind of anomaly, the learned baseline and whether an episode is open.
// A kind's track is made on its first event: until then every window held none of it, so a track
// made late starts exactly where learning those zero windows would have left it (most principals
// never replay or mismatch, and cost one small object).

import type { AnomalyKind } from '../core/anomaly.js'
import { Baseline } from './baseline.js'

/** One kind (replays or mismatches) of one subject. */
export class Track {
  /** Events of this kind per window. */
  readonly rate: Baseline
  /** Their share of the calls, per window that had calls. */
  readonly share: Baseline
  /** Events of this kind in the current window. */
  count = 0
  /** True from an alert until a window comes back within the baseline. */
  inEpisode = false
  /** Completed windows of the open episode (none of them learned). */
  episodeWindows = 0
  /** The current window alerts once its count exceeds this (fixed when the window opened). */
  countLimit = Number.POSITIVE_INFINITY
  /** …and its share of the calls exceeds this; 1 or more means the share cannot tell. */
  shareLimit = 1

  /** `windows` completed windows of the subject, `callWindows` of them with calls, none with an event of this kind. */
  constructor(
    readonly kind: AnomalyKind,
    windows: number,
    callWindows: number,
  ) {
    this.rate = new Baseline(windows)
    this.share = new Baseline(callWindows)
  }

  /** Forget the baseline (an episode long enough to be the new normal). */
  relearn(): void {
    this.rate.reset()
    this.share.reset()
    this.inEpisode = false
    this.episodeWindows = 0
  }
}

/** A scope label, or one principal on an HTTP route, and what is known of it. */
export class Subject {
  /** Calls in the current window, replays and mismatches included. */
  calls = 0
  /** Completed windows since it was first seen, idle ones included. */
  windows = 0
  /** …of which had calls. */
  callWindows = 0
  replays: Track | undefined
  mismatches: Track | undefined
  /** The window of its latest event (when it last moved to the recent end of its list). */
  touched: number
  /** Its neighbours in the list of subjects by recency (subjects.ts). */
  older: Subject | undefined
  newer: Subject | undefined

  constructor(
    /** Where its table finds it: the label, or for a principal the raw scope. */
    readonly key: string,
    readonly subject: 'scope' | 'principal',
    /** The scope label. */
    readonly scope: string,
    /** For `principal`: the hash from the scope. */
    readonly principal: string | undefined,
    /** The index of the current window (time / window length). */
    public window: number,
  ) {
    this.touched = window
  }
}
