// What the Kafka suites share: clients on the broker test/services/kafka.sh starts, fresh topics,
// raw records read back with kcat (a Kafka client nobody here wrote), and private brokers on other
// ports for the tests that restart or cut off a broker.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Admin, Consumer, type ConsumerOptions, Producer } from '@platformatic/kafka'
import type { Redis } from 'ioredis'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { RedisStore } from '../../../../src/stores/redis/redis-store.js'
import { SERVICES } from '../../../services.js'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '../../../..')
const SCRIPT = join(ROOT, 'test/services/kafka.sh')

export const KAFKA = SERVICES.Kafka.url

/** A name unique to this process, for topics and groups. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
}

/** Create `topic` with `partitions` partitions on `broker`, and wait until it is usable. */
export async function createTopic(topic: string, partitions = 1, broker = KAFKA): Promise<void> {
  const admin = new Admin({ clientId: 'idem-test-admin', bootstrapBrokers: [broker] })
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
  } finally {
    await admin.close()
  }
}

/** A consumer group member, with short timeouts so tests see rebalances quickly. */
export function groupMember(
  groupId: string,
  broker = KAFKA,
  options: Partial<ConsumerOptions<Buffer, Buffer, Buffer, Buffer>> = {},
): Consumer {
  return new Consumer({
    clientId: `idem-test-${groupId}`,
    groupId,
    bootstrapBrokers: [broker],
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10000,
    maxWaitTime: 200,
    ...options,
  } as ConsumerOptions<Buffer, Buffer, Buffer, Buffer>)
}

/** An idempotent producer client. */
export function producerClient(broker = KAFKA, clientId = 'idem-test-producer'): Producer {
  return new Producer({ clientId, bootstrapBrokers: [broker], idempotent: true, retries: 20, retryDelay: 250 })
}

/** The group's committed offsets of `topic`'s partitions (-1 where nothing was committed). */
export async function committedOffsets(
  groupId: string,
  topic: string,
  partitions: number,
  broker = KAFKA,
): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'idem-test-offsets', groupId, bootstrapBrokers: [broker] })
  try {
    const offsets = await consumer.listCommittedOffsets({
      topics: [{ topic, partitions: Array.from({ length: partitions }, (_, i) => i) }],
    })
    return offsets.get(topic) ?? []
  } finally {
    await consumer.close()
  }
}

export interface RawRecord {
  key: string
  value: string
  headers: Record<string, string>
  partition: number
  offset: number
}

/** Every record of `topic` as kcat reads it (from the beginning to the end), headers included. */
export async function readWithKcat(
  topic: string,
  broker = KAFKA,
  isolation: 'committed' | 'uncommitted' = 'committed',
): Promise<RawRecord[]> {
  // -J: one JSON envelope per record, so that header values with commas or tabs read back intact.
  const { stdout } = await run(
    'kcat',
    ['-b', broker, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J', '-X', `isolation.level=read_${isolation}`],
    { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
  )
  const records: RawRecord[] = []
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue
    const envelope = JSON.parse(line) as {
      partition: number
      offset: number
      key: string | null
      payload: string | null
      headers?: (string | null)[]
    }
    const headers: Record<string, string> = {}
    const flat = envelope.headers ?? []
    for (let i = 0; i + 1 < flat.length; i += 2) headers[flat[i] as string] = flat[i + 1] ?? ''
    records.push({
      partition: envelope.partition,
      offset: envelope.offset,
      key: envelope.key ?? '',
      headers,
      value: envelope.payload ?? '',
    })
  }
  return records
}

/** Produce raw records with kcat (`key:value` lines), as a producer that is not Idem's would. */
export async function produceWithKcat(topic: string, lines: readonly string[], broker = KAFKA): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('kcat', ['-b', broker, '-P', '-t', topic, '-K', '\t'], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`kcat exited with ${code}: ${stderr}`))))
    child.stdin.end(`${lines.join('\n')}\n`)
  })
}

/** A broker of a test's own, on `port` (controller port + 1), in a temporary folder: restart it, stop it. */
export class PrivateKafka {
  readonly port: number
  readonly broker: string
  readonly #dir: string

  constructor(port: number) {
    this.port = port
    this.broker = `127.0.0.1:${port}`
    this.#dir = mkdtempSync(join(tmpdir(), `idem-kafka-${port}-`))
  }

  #env(): NodeJS.ProcessEnv {
    return { ...process.env, KAFKA_PORT: String(this.port), KAFKA_DIR: this.#dir }
  }

  async start(): Promise<void> {
    await run('bash', [SCRIPT, 'start'], { env: this.#env(), timeout: 180_000 })
  }

  async stop(): Promise<void> {
    await run('bash', [SCRIPT, 'stop'], { env: this.#env(), timeout: 60_000 })
  }

  /** Stop, then start again on the same data: what was committed survives. */
  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /** SIGKILL the broker (by the pid its start wrote), as a crash would; `start()` brings it back on the same data. */
  async kill(): Promise<void> {
    let pid: number
    try {
      pid = Number(readFileSync(join(this.#dir, 'kafka.pid'), 'utf8').trim())
    } catch {
      return // not started by us, or already stopped
    }
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      return // already gone
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0)
      } catch {
        break
      }
      await sleep(50)
    }
    rmSync(join(this.#dir, 'kafka.pid'), { force: true })
  }

  /** Stop and delete its data. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => {})
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** True when kcat and java can run (the private brokers and the raw reads need them). */
export async function toolsAvailable(): Promise<string | undefined> {
  for (const [command, args] of [
    ['kcat', ['-V']],
    ['java', ['-version']],
  ] as const) {
    try {
      await run(command, [...args], { timeout: 10_000 })
    } catch (error) {
      return `${command} cannot run: ${(error as Error).message}`
    }
  }
  return undefined
}

/** The end offset (the next offset to be written) of each partition of `topic`. */
export async function endOffsets(topic: string, broker = KAFKA): Promise<bigint[]> {
  const consumer = new Consumer({
    clientId: 'idem-test-end-offsets',
    groupId: 'idem-test-end-offsets',
    bootstrapBrokers: [broker],
  })
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] })
    return offsets.get(topic) ?? []
  } finally {
    await consumer.close()
  }
}

export { until } from '../../until.test-helper.js'

/** An Idempotency on a RedisStore under `prefix` (its records are shared by every process using the prefix). */
export function redisIdem(client: Redis, prefix: string, lease: string | number = '30s'): Idempotency {
  return new Idempotency({ store: new RedisStore({ client, prefix: `${prefix}:idem:` }), scope: 'kafka-test', lease })
}

/** Delete every Redis key under `prefix`. */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

const WORKER = join(ROOT, 'test/support/brokers/kafka/kafka-consumer.worker.ts')

/** Options of one kafka-consumer.worker.ts process (see that file). */
export interface WorkerOptions {
  topic: string
  group: string
  /** Redis key prefix shared by the test and its workers. */
  prefix: string
  name: string
  broker?: string
  ordering?: 'partition' | 'key'
  concurrency?: number
  /** Each handler sleeps this long before its effect. */
  workMs?: number
  /** The handler of this key hangs (before its effect) until the process is killed. */
  hangOn?: string
  /** Handlers after the first N hang (before their effect) until the process is killed. */
  hangAfter?: number
  /** The Idem lease: how long a dead worker's claims keep others waiting. */
  lease?: string
  /** The group session timeout in ms (default 6000): how long a dead member keeps its partitions. */
  sessionTimeout?: number
}

/** A consumer process: SIGKILL it, or stop it gracefully (SIGTERM: close, leave the group, exit). */
export class WorkerProcess {
  readonly child: ChildProcess
  readonly name: string
  #stderr = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(options: WorkerOptions) {
    this.name = options.name
    const args: string[] = []
    for (const [flag, value] of Object.entries(options)) {
      if (value === undefined) continue
      args.push(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(value))
    }
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString()
    })
    this.child.stdout?.resume()
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }))
    })
  }

  get stderr(): string {
    return this.#stderr
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** SIGKILL, by pid; resolves once it exited. */
  async kill(): Promise<void> {
    if (this.running && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL')
    await this.exited
  }

  /** SIGTERM: the worker closes its consumer and leaves the group; resolves with its exit code. */
  async stop(): Promise<number | null> {
    if (this.running && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGTERM')
    const { code } = await this.exited
    return code
  }
}

/** What the workers of a test wrote in Redis under `prefix`. */
export class WorkerRecords {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis
    this.#prefix = prefix
  }

  /** Per message key, how many times its effect happened (in every process). */
  async effects(): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(`${this.#prefix}:effects`)
    return Object.fromEntries(Object.entries(raw).map(([key, n]) => [key, Number(n)]))
  }

  /** Keys whose handler `name` called, in call order. */
  calls(name: string): Promise<string[]> {
    return this.#redis.lrange(`${this.#prefix}:calls:${name}`, 0, -1)
  }

  /** `[outcome, key]` of each delivery `name` settled, in order. */
  async settled(name: string): Promise<[string, string][]> {
    const raw = await this.#redis.lrange(`${this.#prefix}:settled:${name}`, 0, -1)
    return raw.map((line) => line.split(' ') as [string, string])
  }

  /** Keys whose handler is hanging, in every process. */
  hung(): Promise<string[]> {
    return this.#redis.smembers(`${this.#prefix}:hung`)
  }

  /** Commits a worker saw go out for a partition it no longer owned. */
  violations(): Promise<string[]> {
    return this.#redis.lrange(`${this.#prefix}:violations`, 0, -1)
  }

  /** Member names that joined the group and are consuming. */
  ready(): Promise<string[]> {
    return this.#redis.smembers(`${this.#prefix}:ready`)
  }
}
