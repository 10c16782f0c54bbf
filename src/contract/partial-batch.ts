// A batch call (`beginMany`, `completeMany`) that a store answered in part: a store over several
// backends (ShardedStore) rejects with it when some backends failed, so that the items the others
// answered are not thrown away with the rest. The core reads it item by item.

import { StoreUnavailableError } from '../errors.js'

export interface PartialBatchFailure {
  /** The item's position in the batch. */
  readonly index: number
  readonly error: unknown
}

/**
 * Some items of a batch failed (`failures`); `results` holds, at each position, the store's answer
 * for the others, and undefined for the failed ones. A claim in `results` is held: complete or
 * release it like any other.
 */
export class PartialBatchError<R> extends StoreUnavailableError {
  readonly results: readonly (R | undefined)[]
  readonly failures: readonly PartialBatchFailure[]

  constructor(message: string, results: readonly (R | undefined)[], failures: readonly PartialBatchFailure[]) {
    super(message, { cause: failures[0]?.error })
    this.name = 'PartialBatchError'
    this.results = results
    this.failures = failures
  }

  /** Item `index`'s answer, or its own error when it failed. */
  itemAt(index: number): { ok: true; result: R } | { ok: false; error: unknown } {
    const result = this.results[index]
    if (result !== undefined) return { ok: true, result }
    return { ok: false, error: this.failures.find((f) => f.index === index)?.error ?? this }
  }
}
