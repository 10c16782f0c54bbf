// Which local servers a test file needs, and what happens when one is missing: without
// IDEM_REQUIRE_SERVICES the suite is skipped and says so; with IDEM_REQUIRE_SERVICES=1 (CI) a
// missing server is a failing test, never a silent skip.

import { Socket } from 'node:net'
import { describe, it } from 'vitest'

export const SERVICES = {
  PostgreSQL: { port: 5432, url: process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  MariaDB: { port: 3306, url: process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
  Redis: { port: 6379, url: process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379' },
} as const

export type ServiceName = keyof typeof SERVICES

/** True when something accepts TCP connections on 127.0.0.1:`port` within `timeoutMs`. */
export function reachable(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, host, () => done(true))
  })
}

/**
 * Resolve to true when `name` is reachable. Otherwise register, in place of the suite, a failing
 * test (under IDEM_REQUIRE_SERVICES=1) or a skipped one with a warning naming the server.
 */
export async function requireService(name: ServiceName | string, port: number): Promise<boolean> {
  if (await reachable(port)) return true
  reportMissing(name, `${name} is not reachable at 127.0.0.1:${port}`, `is reachable at 127.0.0.1:${port}`)
  return false
}

/**
 * In place of a suite that cannot run: a failing test under IDEM_REQUIRE_SERVICES=1, otherwise a
 * skipped one and a warning that says what is missing.
 */
export function reportMissing(suite: string, message: string, requirement: string): void {
  if (process.env.IDEM_REQUIRE_SERVICES === '1') {
    describe(suite, () => {
      it(`${requirement} (IDEM_REQUIRE_SERVICES=1)`, () => {
        throw new Error(`${message}; start it (see .ci/run) or unset IDEM_REQUIRE_SERVICES`)
      })
    })
  } else {
    console.warn(`SKIPPED: ${message}; its suite did not run (set IDEM_REQUIRE_SERVICES=1 to make this fail)`)
    describe.skip(`${suite} (${message})`, () => {
      it(requirement, () => {})
    })
  }
}

/** A name unique to this test file and process, for tables, schemas and key prefixes. */
export function isolatedName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
}
