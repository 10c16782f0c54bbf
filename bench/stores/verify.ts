// Checks run before anything is timed: ours executes a new key once and replays a duplicate
// without running its function, so that a table never measures something other than it claims.

import type { Idempotency, IdempotencyStore } from '../../src/index.js'
import { mustNotRun, PAYLOAD, produce, VALUE } from '../lib/fixtures.js'

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

export async function verifyIdem(name: string, idem: Idempotency, newKey: string, dupKey: string): Promise<void> {
  const fresh = await idem.run({ key: newKey, payload: PAYLOAD }, produce)
  if (fresh.status !== 'executed') throw new Error(`bench: ${name}: a new key did not execute`)
  for (const key of [newKey, dupKey]) {
    const dup = await idem.run({ key, payload: PAYLOAD }, mustNotRun)
    if (dup.status !== 'replayed' || !same(dup.value, VALUE)) {
      throw new Error(`bench: ${name}: a duplicate was not replayed`)
    }
  }
}

/** Complete `keys` through `idem.run`, `concurrency` at a time. */
export async function completeKeys(idem: Idempotency, keys: readonly string[], concurrency = 64): Promise<void> {
  for (let i = 0; i < keys.length; i += concurrency) {
    await Promise.all(keys.slice(i, i + concurrency).map((key) => idem.run({ key, payload: PAYLOAD }, produce)))
  }
}

/** The same store, counting `begin` calls: to prove that TieredStore answers duplicates from its cache. */
export function countingBegins(store: IdempotencyStore): { store: IdempotencyStore; begins: () => number } {
  let begins = 0
  const counting = new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'begin' || property === 'beginMany') {
        return (...args: unknown[]) => {
          begins++
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      }
      return (value as (...a: unknown[]) => unknown).bind(target)
    },
  })
  return { store: counting, begins: () => begins }
}
