// The largest response the HTTP layer stores, checked against the limits below it. A response is
// stored through `Idempotency.run` into the store: a response limit above the Idempotency's or the
// store's own would let a response be delivered that cannot be stored, and its key would stay
// claimed until the lease lapsed, then run again. So such a configuration is refused here.

import { positiveInteger } from '../../contract/duration.js'
import type { IdempotencyStore } from '../../contract/types.js'
import type { Idempotency } from '../../core/idempotency.js'
import { HTTP_DEFAULTS } from './options.js'

/** The `maxResultBytes` an object declares, if it does (the store contract leaves it optional). */
function declaredLimit(holder: unknown): number | undefined {
  const limit = (holder as { maxResultBytes?: unknown }).maxResultBytes
  return typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0 ? limit : undefined
}

/**
 * `maxResponseBytes` as given (refused above a declared limit, naming both) or by default: 1 MiB,
 * lowered to the store's and the `idem`'s limits when they declare lower ones.
 */
export function responseLimit(
  maxResponseBytes: number | undefined,
  store: IdempotencyStore,
  idem: Idempotency | undefined,
): number {
  const limits: Array<[string, number | undefined]> = [
    ["the store's maxResultBytes", declaredLimit(store)],
    ["the idem's maxResultBytes", idem === undefined ? undefined : declaredLimit(idem)],
  ]
  if (maxResponseBytes === undefined) {
    let limit: number = HTTP_DEFAULTS.maxResponseBytes
    for (const [, below] of limits) if (below !== undefined && below < limit) limit = below
    return limit
  }
  const limit = positiveInteger(maxResponseBytes, 'maxResponseBytes')
  for (const [name, below] of limits) {
    if (below !== undefined && limit > below) {
      throw new RangeError(
        `maxResponseBytes (${limit}) is above ${name} (${below}): a response between the two would be ` +
          `delivered but could not be stored. Set maxResponseBytes to at most ${below}, or raise ${name}`,
      )
    }
  }
  return limit
}
