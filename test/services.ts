// Which local servers a test file needs, and what happens when one is missing: without
// IDEM_REQUIRE_SERVICES the suite is skipped and says so; with IDEM_REQUIRE_SERVICES=1 (CI) a
// missing server is a failing test, never a silent skip.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, it } from 'vitest'
import { reachable } from './reachable.js'

export { reachable }

export const SERVICES = {
  PostgreSQL: { port: 5432, url: process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  MariaDB: { port: 3306, url: process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
  Redis: { port: 6379, url: process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  /** Started by test/services/kafka.sh (which .ci/run calls). */
  Kafka: { port: 9092, url: process.env.IDEM_KAFKA_BROKER ?? '127.0.0.1:9092' },
  /** Started by test/services/rocketmq.sh (which .ci/run calls): the gRPC proxy's endpoints. */
  RocketMQ: { port: 8081, url: process.env.IDEM_ROCKETMQ_ENDPOINTS ?? '127.0.0.1:8081' },
  /** Started by test/services/pulsar.sh (which .ci/run calls): the web service, WebSocket API included. */
  Pulsar: {
    port: Number(process.env.IDEM_PULSAR_WEB_PORT ?? 8088),
    url: `ws://127.0.0.1:${process.env.IDEM_PULSAR_WEB_PORT ?? 8088}`,
  },
} as const

export type ServiceName = keyof typeof SERVICES

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

/**
 * True when redis-server and redis-cli can be run, for suites that start servers of their own
 * (a Redis Cluster, a Redis to kill and restart). Otherwise as requireService.
 */
export async function requireRedisBinaries(suite: string): Promise<boolean> {
  const run = promisify(execFile)
  try {
    await run('redis-server', ['--version'], { timeout: 5000 })
    await run('redis-cli', ['--version'], { timeout: 5000 })
    return true
  } catch (error) {
    const message = `${suite} needs redis-server and redis-cli on PATH: ${(error as Error).message}`
    reportMissing(suite, message, 'can start its own Redis')
    return false
  }
}

/** A name unique to this test file and process, for tables, schemas and key prefixes. */
export function isolatedName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
}
