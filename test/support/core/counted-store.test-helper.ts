// A store whose method calls are counted by name, for tests that prove how many round trips a path makes.

import type { IdempotencyStore } from '../../../src/contract/types.js'

/** The store, with every method call counted by name. */
export function counted(inner: IdempotencyStore): { store: IdempotencyStore; calls: Record<string, number> } {
  const calls: Record<string, number> = {}
  const store = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls[String(property)] = (calls[String(property)] ?? 0) + 1
        return value.apply(target, args)
      }
    },
  })
  return { store, calls }
}
