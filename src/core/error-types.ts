// Restoring the class of a replayed `isFinal` error. A stored error keeps its name, message and
// JSON-safe own properties; with a registry of the user's error classes, a duplicate receives an
// instance of the same class again, so `instanceof` holds on redelivery as on the first delivery.

/** An error class whose replayed errors can be restored (its constructor is not called). */
export type ErrorClass = abstract new (...args: never[]) => Error

/** The `errorTypes` option: classes keyed by the `name` their errors carry, or an explicit name → class record. */
export type ErrorTypes = readonly ErrorClass[] | Readonly<Record<string, ErrorClass>>

/** Error classes by the `name` of a stored error. */
export type ErrorRegistry = ReadonlyMap<string, ErrorClass>

/**
 * The registry of an `errorTypes` option. A class in a list is registered under the `name` its
 * instances carry: a `name` defined on its prototype, or else the class's own name (which is the
 * errors' name when they set `this.name = new.target.name` or `this.name = 'CardDeclinedError'`).
 */
export function errorRegistry(types: ErrorTypes | undefined): ErrorRegistry | undefined {
  if (types === undefined) return undefined
  if (types === null || typeof types !== 'object') {
    throw new TypeError('errorTypes must be a list of error classes or a record of name → error class')
  }
  const entries: [string, unknown][] = Array.isArray(types)
    ? types.map((type: unknown) => [nameOf(type), type])
    : Object.entries(types)
  const registry = new Map<string, ErrorClass>()
  for (const [name, type] of entries) {
    if (typeof type !== 'function' || !(type.prototype instanceof Error || type === Error)) {
      throw new TypeError(`errorTypes: ${name || String(type)} is not an Error class (a class that extends Error)`)
    }
    registry.set(name, type as ErrorClass)
  }
  return registry.size > 0 ? registry : undefined
}

function nameOf(type: unknown): string {
  if (typeof type !== 'function') return ''
  const own = Object.getOwnPropertyDescriptor(type.prototype ?? {}, 'name')
  return typeof own?.value === 'string' ? own.value : type.name
}

/**
 * A native Error whose prototype is `type`'s, built without calling `type`'s constructor (which
 * may need arguments or have effects): `instanceof` and the class's methods work, the stack is
 * the replay's.
 */
export function restoreError(type: ErrorClass, message: string): Error {
  return Reflect.construct(Error, [message], type) as Error
}
