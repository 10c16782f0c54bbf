// Options the broker adapters renamed, read under either name for one release: the old name
// warns once per process (IDEM_DEPRECATED) and says what to use instead.

import { warnDeprecated } from '../contract/deprecation.js'
import { type Duration, toMs } from '../contract/duration.js'

/**
 * `options[name]`, or else `options[old]` with a deprecation warning; both given is a TypeError.
 * `where` names the function, `path` the object holding the option when it is nested (`'batch.'`).
 */
export function renamedOption<T>(options: object, name: string, old: string, where: string, path = ''): T | undefined {
  const record = options as Record<string, unknown>
  const value = record[name]
  const previous = record[old]
  if (previous === undefined) return value as T | undefined
  if (value !== undefined) {
    throw new TypeError(`${where}: give ${path}${name} only (${path}${old} is its deprecated name)`)
  }
  warnDeprecated(`${where}({ ${path}${old} })`, `${where}({ ${path}${name} })`)
  return previous as T
}

/** The driver object of an adapter: `client`, or its deprecated name (`connection`); required. */
export function clientOption<C>(options: object, old: string, where: string, needs: string): C {
  const client = renamedOption<C>(options, 'client', old, where)
  if (client === undefined || client === null) throw new TypeError(`${where} needs client: ${needs}`)
  return client
}

/**
 * A duration renamed from raw milliseconds (`fetchExpiresMs` → `fetchExpires`): the Duration in ms,
 * or `fallback` when neither name is given.
 */
export function renamedDuration(
  options: object,
  name: string,
  old: string,
  where: string,
  path: string,
  fallback: number,
): number
export function renamedDuration(
  options: object,
  name: string,
  old: string,
  where: string,
  path?: string,
): number | undefined
export function renamedDuration(
  options: object,
  name: string,
  old: string,
  where: string,
  path = '',
  fallback?: number,
): number | undefined {
  const value = renamedOption<Duration>(options, name, old, where, path)
  return value === undefined ? fallback : toMs(value, `${path}${name}`)
}
