// A store wrapper for tests: counts calls per operation and fails the ones told to.

import type { IdempotencyStore } from '../../../src/contract/types.js'

type Operation = 'begin' | 'complete' | 'release' | 'extend'

export class FaultyStore implements IdempotencyStore {
  readonly calls: Record<Operation, number> = { begin: 0, complete: 0, release: 0, extend: 0 }
  /** How many more calls of each operation fail (Infinity: all of them). */
  readonly failing: Record<Operation, number> = { begin: 0, complete: 0, release: 0, extend: 0 }

  constructor(readonly inner: IdempotencyStore) {}

  fail(operation: Operation, times = Number.POSITIVE_INFINITY): void {
    this.failing[operation] = times
  }

  #maybeFail(operation: Operation): void {
    this.calls[operation]++
    if (this.failing[operation] > 0) {
      this.failing[operation]--
      throw Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:6399 (during ${operation})`), {
        code: 'ECONNREFUSED',
      })
    }
  }

  begin: IdempotencyStore['begin'] = async (...args) => {
    this.#maybeFail('begin')
    return this.inner.begin(...args)
  }
  complete: IdempotencyStore['complete'] = async (...args) => {
    this.#maybeFail('complete')
    return this.inner.complete(...args)
  }
  release: IdempotencyStore['release'] = async (...args) => {
    this.#maybeFail('release')
    return this.inner.release(...args)
  }
  extend: IdempotencyStore['extend'] = async (...args) => {
    this.#maybeFail('extend')
    return this.inner.extend(...args)
  }
  get: IdempotencyStore['get'] = (...args) => this.inner.get(...args)
  delete: IdempotencyStore['delete'] = (...args) => this.inner.delete(...args)
  beginMany: IdempotencyStore['beginMany'] = (...args) => this.inner.beginMany(...args)
  completeMany: IdempotencyStore['completeMany'] = (...args) => this.inner.completeMany(...args)
  sweep: IdempotencyStore['sweep'] = (...args) => this.inner.sweep(...args)
  close: IdempotencyStore['close'] = () => this.inner.close()
}
