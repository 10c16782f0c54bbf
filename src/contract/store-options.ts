// A store's options object, checked once at construction: the driver object is always `client`,
// unknown options are refused by name (a typo must not silently fall back to a default), and
// renamed options still work for one release with a deprecation warning.

import { warnDeprecated } from './deprecation.js'

export interface StoreOptionsRule {
  /** The store's class name, for messages: `SqliteStore`. */
  store: string
  /** What `client` must be, for messages: `a better-sqlite3 Database or a file name`. Omit when there is no client. */
  client?: string
  /** The options that must be given; default `['client']` when `client` is described. */
  required?: readonly string[]
  /** Whether the first required option has the right shape. */
  accepts?: (client: unknown) => boolean
  /** Every option the store takes, `client` included. */
  known: readonly string[]
  /** Old option name -> its replacement; the old one is copied over (unless both are given) and warned about once. */
  renamed?: Readonly<Record<string, string>>
}

/**
 * `options` as the store will read them: renamed options moved to their new names, everything
 * else checked. Throws a TypeError that names the option the store needs.
 */
export function readStoreOptions<O extends object>(options: unknown, rule: StoreOptionsRule): O {
  const required = rule.required ?? (rule.client === undefined ? [] : ['client'])
  const needs = required.length === 0 ? undefined : `${rule.store} needs { ${required.join(', ')} }: ${rule.client}`
  if (options === undefined && needs === undefined) return {} as O
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${needs ?? `${rule.store} takes an options object`}; got ${describe(options)}`)
  }
  const read: Record<string, unknown> = {}
  const unknown: string[] = []
  for (const [name, value] of Object.entries(options)) {
    const renamed = rule.renamed?.[name]
    if (renamed !== undefined) {
      warnDeprecated(`${rule.store} option "${name}"`, `"${renamed}"`)
      if (value !== undefined && !(renamed in options)) read[renamed] = value
    } else if (rule.known.includes(name)) {
      read[name] = value
    } else {
      unknown.push(name)
    }
  }
  const missing = required.filter((name) => read[name] === undefined || read[name] === null)
  if (needs !== undefined && missing.length > 0) {
    const got = unknown.length > 0 ? `unknown option ${list(unknown)}` : `no ${missing.join(' and no ')}`
    throw new TypeError(`${needs}; got ${got}`)
  }
  if (unknown.length > 0) {
    throw new TypeError(`${rule.store} got unknown option ${list(unknown)}; it takes ${rule.known.join(', ')}`)
  }
  const first = required[0]
  if (needs !== undefined && first !== undefined && rule.accepts !== undefined && !rule.accepts(read[first])) {
    throw new TypeError(`${needs}; got ${first} = ${describe(read[first])}`)
  }
  return read as O
}

/**
 * The usual `accepts` rule: a factory function, or an object with every one of `methods` (the
 * driver calls the store makes), and with `orFileName` a string too (SQLite's file name).
 */
export function factoryOrClientWith(methods: readonly string[], orFileName = false): (client: unknown) => boolean {
  return (client) =>
    typeof client === 'function' ||
    (orFileName && typeof client === 'string') ||
    (typeof client === 'object' &&
      client !== null &&
      methods.every((method) => typeof (client as Record<string, unknown>)[method] === 'function'))
}

function list(names: readonly string[]): string {
  return names.map((name) => JSON.stringify(name)).join(', ')
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  if (typeof value === 'object') return `an object without the expected methods`
  return `${typeof value} ${String(value)}`
}
