// A private single-node Kafka for the chaos run (KRaft: broker and controller in one JVM), from the
// jars test/services/kafka.sh fetches into .services/kafka/libs. It is spawned here, not through
// the script, so that the run owns the JVM's pid: `restart` SIGKILLs it and starts it again on the
// same data directory.

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Admin } from '@platformatic/kafka'
import { Managed } from '../servers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const LIBS = join(ROOT, '.services/kafka/libs')
const FETCH = join(ROOT, 'test/services/kafka.sh')
const run = promisify(execFile)

/**
 * Two client listeners, because a Kafka client connects first to its bootstrap address and then
 * to the addresses the broker's metadata advertises:
 * - `workers` (16180) advertises the proxy's port (16181): a worker bootstraps through the proxy
 *   and the metadata sends it back through the proxy, so every fault of the proxy reaches it;
 * - `direct` (16183) advertises itself: the run's producer and its offset queries reach the
 *   broker without the proxy, as with every other broker of the run.
 */
export const KAFKA_PORTS = { workers: 16180, proxy: 16181, controller: 16182, direct: 16183 } as const

/** The run's own clients: straight to the broker, never through the proxy. */
export const KAFKA_DIRECT = `127.0.0.1:${KAFKA_PORTS.direct}`

export class PrivateKafka extends Managed {
  readonly name = 'kafka'
  // A JVM restarting on a loaded 2-core machine, with log recovery after the SIGKILL: 13 to 17 s at
  // a load average of 11, and more than 30 s was seen under a run's own load.
  protected override readonly startTimeoutMs = 120_000
  #formatted = false

  constructor() {
    super(KAFKA_PORTS.workers, 'kafka')
    const config = [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${KAFKA_PORTS.controller}`,
      `listeners=WORKERS://127.0.0.1:${KAFKA_PORTS.workers},DIRECT://${KAFKA_DIRECT},CONTROLLER://127.0.0.1:${KAFKA_PORTS.controller}`,
      `advertised.listeners=WORKERS://127.0.0.1:${KAFKA_PORTS.proxy},DIRECT://${KAFKA_DIRECT}`,
      'listener.security.protocol.map=WORKERS:PLAINTEXT,DIRECT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=DIRECT',
      'controller.listener.names=CONTROLLER',
      `log.dirs=${join(this.dir, 'data')}`,
      // Topics are created by the run, with their partitions: a misspelt one must not appear.
      'auto.create.topics.enable=false',
      // One broker: the internal topics cannot have more than one replica.
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=2',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      // Workers are killed and started again all the time: assign at once, accept short sessions.
      'group.initial.rebalance.delay.ms=0',
      'group.min.session.timeout.ms=1000',
      // No flush settings: a write acknowledged with acks=all is in the page cache, which a SIGKILL
      // of the JVM does not lose (the faults kill processes, never the machine); the start after
      // the crash recovers the log segments from it.
      'num.network.threads=2',
      'num.io.threads=2',
      'num.recovery.threads.per.data.dir=1',
    ]
    writeFileSync(join(this.dir, 'server.properties'), `${config.join('\n')}\n`)
  }

  protected command() {
    const args = ['-Xms128m', '-Xmx320m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true']
    args.push('-Dorg.slf4j.simpleLogger.defaultLogLevel=warn', '-cp', `${LIBS}/*`, 'kafka.Kafka', 'server.properties')
    return { file: 'java', args }
  }

  override async start(): Promise<void> {
    if (!this.#formatted) {
      // The jars, once (Maven; a no-op when cached), then the storage of a new cluster.
      if (!existsSync(LIBS)) await run('bash', [FETCH, 'fetch'], { timeout: 600_000 })
      const format = ['-cp', `${LIBS}/*`, 'kafka.tools.StorageTool', 'format', '--standalone']
      format.push('-t', clusterId(), '-c', 'server.properties', '--ignore-formatted')
      await run('java', format, { cwd: this.dir, timeout: 120_000 })
      this.#formatted = true
    }
    await super.start()
    await answersMetadata(this.startTimeoutMs)
  }
}

/** A Kafka cluster id: 16 random bytes in URL-safe base64 (what `StorageTool random-uuid` prints). */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

/** An open port is not yet a broker: wait until it answers a metadata request on the direct listener. */
async function answersMetadata(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const admin = new Admin({ clientId: 'chaos-ready', bootstrapBrokers: [KAFKA_DIRECT], retries: 0 })
    try {
      await admin.metadata({ topics: [] })
      return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`Kafka does not answer on ${KAFKA_DIRECT}: ${error}`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    } finally {
      await admin.close().catch(() => {})
    }
  }
}
