// Label values with bounded cardinality: a metric never gets a key or a principal as a label, and
// never more distinct values of a label than its cap (the rest count under `other`).

import { ANONYMOUS } from '../../http/core/request-identity.js'

/** The value that stands for every label value beyond a cap. */
export const OTHER = 'other'

/** Default cap on the distinct values of one label (scopes, routes, consumers, relays). */
export const DEFAULT_MAX_LABEL_VALUES = 100

/**
 * The distinct values of one label, up to `max`: `of(value)` is the value itself while it is one
 * of the first `max` seen, else `other`. Memory is bounded by `max`.
 */
export class LabelValues {
  readonly #max: number
  readonly #seen = new Set<string>()
  #overflowed = false

  constructor(max: number = DEFAULT_MAX_LABEL_VALUES) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxLabelValues must be an integer ≥ 1, got ${max}`)
    this.#max = max
  }

  of(value: string): string {
    if (this.#seen.has(value)) return value
    if (this.#seen.size < this.#max) {
      this.#seen.add(value)
      return value
    }
    this.#overflowed = true
    return OTHER
  }

  /** True once a value was counted as `other`. */
  get overflowed(): boolean {
    return this.#overflowed
  }
}

/** The principal part of an HTTP scope: `anonymous`, or 27 characters of a base64url SHA-256. */
const PRINCIPAL = /^(?:[A-Za-z0-9_-]{27})$/

/**
 * The label of a scope: the scope itself, except for the HTTP layer's scopes
 * (`prefix|principal|METHOD route`), whose principal part is dropped (`prefix|METHOD route`), so a
 * label says which route and never who.
 */
export function scopeLabel(scope: string): string {
  const first = scope.indexOf('|')
  if (first < 0) return scope
  const second = scope.indexOf('|', first + 1)
  if (second < 0) return scope
  const who = scope.slice(first + 1, second)
  if (who !== ANONYMOUS && !PRINCIPAL.test(who)) return scope
  return `${scope.slice(0, first)}|${scope.slice(second + 1)}`
}

/**
 * Labels of scopes, bounded twice over: raw scopes (one per principal for HTTP) map to labels
 * through a cache that is cleared when it holds `maxCached`, and labels are capped by `values`.
 */
export class ScopeLabels {
  readonly #values: LabelValues
  readonly #cache = new Map<string, string>()
  readonly #maxCached: number

  constructor(maxLabelValues: number = DEFAULT_MAX_LABEL_VALUES, maxCached = 10_000) {
    this.#values = new LabelValues(maxLabelValues)
    this.#maxCached = maxCached
  }

  of(scope: string): string {
    let label = this.#cache.get(scope)
    if (label !== undefined) return label
    label = this.#values.of(scopeLabel(scope))
    if (this.#cache.size >= this.#maxCached) this.#cache.clear()
    this.#cache.set(scope, label)
    return label
  }
}
