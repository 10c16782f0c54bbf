// What the Kafka suites share: clients on the broker test/services/kafka.sh starts, fresh topics,
// raw records read back with kcat (a Kafka client nobody here wrote), and private brokers on other
// ports for the tests that restart or cut off a broker.

import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Admin, Consumer, type ConsumerOptions, Producer } from '@platformatic/kafka'
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
  const { stdout } = await run(
    'kcat',
    [
      '-b',
      broker,
      '-C',
      '-t',
      topic,
      '-o',
      'beginning',
      '-e',
      '-q',
      '-X',
      `isolation.level=read_${isolation}`,
      '-f',
      '%p\\t%o\\t%k\\t%h\\t%s\\n',
    ],
    { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
  )
  const records: RawRecord[] = []
  for (const line of stdout.split('\n')) {
    if (line === '') continue
    const [partition, offset, key, headers, ...value] = line.split('\t')
    const parsed: Record<string, string> = {}
    if (headers !== undefined && headers !== '') {
      for (const pair of headers.split(',')) {
        const at = pair.indexOf('=')
        parsed[pair.slice(0, at)] = pair.slice(at + 1)
      }
    }
    records.push({
      partition: Number(partition),
      offset: Number(offset),
      key: key ?? '',
      headers: parsed,
      value: value.join('\t'),
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
