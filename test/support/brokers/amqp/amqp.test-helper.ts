// Test rig for idem/amqp against the local RabbitMQ: connections, isolated queues and their
// cleanup, an effect log in SQLite that tests (and child processes) count in, and rabbitmqctl
// for what only the server can do (drop a connection, shorten the consumer timeout).

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import amqp from 'amqplib'
import Database from 'better-sqlite3'
import { DEFAULT_DELAY_TIERS } from '../../../../src/brokers/amqp/amqp-topology.js'

export const AMQP_URL = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
export const AMQP_PORT = 5672

const run = promisify(execFile)

export type QueueType = 'quorum' | 'classic'

/** A plain connection (not recovering): channels reopen on it, a lost connection is final. */
export function connect(name: string): Promise<amqp.ChannelModel> {
  return amqp.connect(AMQP_URL, { clientProperties: { connection_name: name } })
}

/** Declare a durable queue of `type` and return its name. */
export async function declareQueue(channel: amqp.Channel, name: string, type: QueueType): Promise<string> {
  await channel.assertQueue(name, { durable: true, arguments: { 'x-queue-type': type } })
  return name
}

/** Delete the queue and everything idem/amqp declared for it (delay queues of `tiers` and of the default tiers). */
export async function deleteQueueAndTopology(
  connection: amqp.ChannelModel,
  queue: string,
  tiers: readonly number[] = [],
) {
  const channel = await connection.createChannel()
  channel.on('error', () => {})
  const delays = [...new Set([...tiers, ...DEFAULT_DELAY_TIERS])].map((ms) => `${queue}.idem.delay.${ms}`)
  for (const q of [queue, `${queue}.idem.dlq`, ...delays]) {
    await channel.deleteQueue(q)
  }
  await channel.deleteExchange(`${queue}.idem.dlx`)
  await channel.close()
}

/** Messages in the dead-letter queue, fetched with basic.get and acked. */
export async function drainQueue(connection: amqp.ChannelModel, queue: string): Promise<amqp.GetMessage[]> {
  const channel = await connection.createChannel()
  const got: amqp.GetMessage[] = []
  for (let m = await channel.get(queue, { noAck: true }); m !== false; m = await channel.get(queue, { noAck: true })) {
    got.push(m)
  }
  await channel.close()
  return got
}

/** Messages ready plus unacknowledged in `queue`, by the broker's count. */
export async function queueDepth(connection: amqp.ChannelModel, queue: string): Promise<number> {
  const channel = await connection.createChannel()
  const { messageCount } = await channel.checkQueue(queue)
  await channel.close()
  return messageCount
}

/**
 * A SQLite file where handlers record each effect (one row per execution, keyed by message id):
 * the test counts rows, so a double effect or a lost one shows, whichever process ran it.
 */
export class EffectLog {
  readonly dir = mkdtempSync(join(tmpdir(), 'idem-amqp-'))
  readonly file = join(this.dir, 'effects.db')
  readonly db: Database.Database

  constructor() {
    this.db = new Database(this.file)
    this.db.pragma('journal_mode = WAL')
    this.db.exec('CREATE TABLE effects (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL)')
  }

  record(messageId: string): void {
    this.db.prepare('INSERT INTO effects (message_id) VALUES (?)').run(messageId)
  }

  /** Executions per message id. */
  counts(): Map<string, number> {
    const rows = this.db.prepare('SELECT message_id, count(*) AS n FROM effects GROUP BY message_id').all() as {
      message_id: string
      n: number
    }[]
    return new Map(rows.map((r) => [r.message_id, r.n]))
  }

  close(): void {
    this.db.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Resolve once `check()` is true; fail after `timeoutMs` with `what`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** A promise and its resolver, for pausing a handler until the test lets it go. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 })
  return stdout
}

/** Close, from the server side, the connection whose client end is on local `port`. */
export async function closeConnectionFromServer(port: number): Promise<void> {
  const listing = await rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'pid', 'name')
  const line = listing.split('\n').find((l) => l.includes(`:${port} ->`))
  const pid = line?.split('\t')[0]
  if (pid === undefined) throw new Error(`no RabbitMQ connection from local port ${port}:\n${listing}`)
  await rabbitmqctl('close_connection', pid, 'idem test: connection dropped')
}

/** The local port of an amqplib connection's socket (to find it in `rabbitmqctl list_connections`). */
export function localPort(connection: amqp.ChannelModel): number {
  const stream = (connection.connection as unknown as { stream: { localPort?: number } }).stream
  if (stream.localPort === undefined) throw new Error('connection has no local port')
  return stream.localPort
}

async function rabbitEnv(name: string): Promise<string> {
  const out = (await rabbitmqctl('eval', `application:get_env(rabbit, ${name}).`)).trim()
  const match = /^\{ok,(\d+)\}$/.exec(out)
  if (match === null) throw new Error(`unexpected rabbit ${name}: ${out}`)
  return match[1] as string
}

const setRabbitEnv = (name: string, value: string) =>
  rabbitmqctl('eval', `application:set_env(rabbit, ${name}, ${value}).`)

/**
 * Run `open` while the broker gives new channels a consumer timeout of `ms` (RabbitMQ 3.x reads
 * consumer_timeout when a channel opens and checks it every channel tick, shortened here to 1 s
 * until `restore()`). Channels opened by other tests during that window also get the short
 * timeout; nothing else changes.
 */
export async function withConsumerTimeout<T>(
  ms: number,
  open: () => Promise<T>,
): Promise<{ value: T; restore(): Promise<void> }> {
  const tick = await rabbitEnv('channel_tick_interval')
  const timeout = await rabbitEnv('consumer_timeout')
  await setRabbitEnv('channel_tick_interval', '1000')
  await setRabbitEnv('consumer_timeout', String(ms))
  const restore = () => setRabbitEnv('channel_tick_interval', tick).then(() => {})
  try {
    return { value: await open(), restore }
  } catch (error) {
    await restore()
    throw error
  } finally {
    await setRabbitEnv('consumer_timeout', timeout)
  }
}

/** True when rabbitmqctl can talk to the local node (it needs the node's Erlang cookie). */
export async function rabbitmqctlAvailable(): Promise<boolean> {
  try {
    await rabbitmqctl('eval', 'ok.')
    return true
  } catch {
    return false
  }
}
