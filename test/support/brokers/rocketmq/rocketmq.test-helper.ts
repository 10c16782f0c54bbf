// Fixtures for the RocketMQ tests on the shared local broker (test/services/rocketmq.sh): topics
// created through the script (the gRPC proxy does not create them on first use), names unique to
// a test file, started producers and simple consumers with a quiet logger, and polling helpers.

import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type MessageView, Producer, SimpleConsumer } from 'rocketmq-client-nodejs'
import { isolatedName, SERVICES } from '../../../services.js'
import { quietLogger } from './quiet-logger.test-helper.js'

export { quietLogger }

/** The gRPC proxy's port, for requireService('RocketMQ', ROCKETMQ_GRPC_PORT). */
export const ROCKETMQ_GRPC_PORT = SERVICES.RocketMQ.port
export const ENDPOINTS = SERVICES.RocketMQ.url

const REPO = fileURLToPath(new URL('../../../..', import.meta.url))
const SCRIPT = 'test/services/rocketmq.sh'

/**
 * Create topics (`NAME` or `NAME:TYPE`, TYPE NORMAL, TRANSACTION, FIFO or DELAY) with one call of
 * the script: 4-9 s, whatever their number. Do it before any client asks for their route: the
 * proxy remembers "no route" for a couple of seconds.
 */
export async function createTopics(...specs: string[]): Promise<void> {
  if (specs.length === 0) return
  try {
    await promisify(execFile)('bash', [SCRIPT, 'topics', ...specs], { cwd: REPO, timeout: 120_000 })
  } catch (error) {
    const { stderr } = error as { stderr?: string }
    throw new Error(`creating topics ${specs.join(' ')} failed: ${stderr?.trim() || (error as Error).message}`)
  }
}

/** A topic, tag or consumer group name unique to this process (letters, digits and _ only). */
export function uniqueName(prefix: string): string {
  return isolatedName(prefix).replace(/[^A-Za-z0-9_]/g, '_')
}

/** A started Producer (shut it down yourself). `topics` are looked up at startup. */
export async function startProducer(options: { topics?: string[] } = {}): Promise<Producer> {
  const producer = new Producer({
    endpoints: ENDPOINTS,
    namespace: '',
    logger: quietLogger,
    ...(options.topics === undefined ? {} : { topics: options.topics }),
  })
  await producer.startup()
  return producer
}

export interface SimpleConsumerSettings {
  group: string
  /** Topic → tag expression ('*' for every tag). */
  subscriptions: Record<string, string>
  /** The long poll of each receive, in ms. Default 3000 (less is refused by the proxy). */
  awaitDuration?: number
}

/** A started SimpleConsumer (shut it down yourself). */
export async function startSimpleConsumer(settings: SimpleConsumerSettings): Promise<SimpleConsumer> {
  const consumer = new SimpleConsumer({
    endpoints: ENDPOINTS,
    namespace: '',
    logger: quietLogger,
    consumerGroup: settings.group,
    subscriptions: new Map(Object.entries(settings.subscriptions)),
    awaitDuration: settings.awaitDuration ?? 3000,
  })
  await consumer.startup()
  return consumer
}

/** Send `body` (a string or JSON) to `topic`; resolves once the broker stored it. */
export async function send(
  producer: Producer,
  topic: string,
  body: unknown,
  options: { tag?: string; keys?: string[]; properties?: Record<string, string> } = {},
): Promise<string> {
  const receipt = await producer.send({
    topic,
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    ...(options.tag === undefined ? {} : { tag: options.tag }),
    ...(options.keys === undefined ? {} : { keys: options.keys }),
    ...(options.properties === undefined ? {} : { properties: new Map(Object.entries(options.properties)) }),
  })
  return receipt.messageId
}

/**
 * Receive from `topic` with a consumer group of its own until `count` messages came (acking
 * each), or `timeoutMs` passed; then wait `settleMs` more for any extra. Returns them all, in the
 * order received: to read a dead-letter topic back, or to check nothing more arrived.
 */
export async function drain(
  topic: string,
  options: { count: number; tag?: string; timeoutMs?: number; settleMs?: number },
): Promise<MessageView[]> {
  const consumer = await startSimpleConsumer({
    group: uniqueName('drain'),
    subscriptions: { [topic]: options.tag ?? '*' },
  })
  const out: MessageView[] = []
  try {
    const until = Date.now() + (options.timeoutMs ?? 20_000)
    const read = async () => {
      for (const view of await consumer.receive(16, 10_000)) {
        out.push(view)
        await consumer.ack(view)
      }
    }
    while (out.length < options.count && Date.now() < until) await read()
    const settle = Date.now() + (options.settleMs ?? 0)
    while (Date.now() < settle) await read()
  } finally {
    await consumer.shutdown().catch(() => {})
  }
  return out
}

/** Poll `probe` until it returns true, or fail after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}
