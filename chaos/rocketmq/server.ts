// A private Apache RocketMQ 5 for the chaos run, from the jars test/services/rocketmq.sh fetches
// into .services/rocketmq/libs: a name server, and a broker with its gRPC proxy in one JVM (the
// proxy's "local" mode), spawned here so that the run owns both pids. `restart` SIGKILLs the
// broker's JVM (the one holding the messages) and starts it again on the same store; the name
// server, which holds no message, stays up.

import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Managed, type PrivateServer } from '../servers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const LIBS = join(ROOT, '.services/rocketmq/libs')
const SCRIPT = join(ROOT, 'test/services/rocketmq.sh')
const run = promisify(execFile)

/**
 * The gRPC endpoint (16186) is what the Node client uses, and the chaos proxy in front of it
 * (16187) is what the workers are given. A limit, seen with `ss -tnp` during a run: in "local" mode
 * the gRPC proxy answers a route query with its own port (16186), and the client receives and
 * acknowledges through that address, so a worker's receives and acks reach the broker directly;
 * only what goes to the endpoint it was given (route queries, heartbeats, telemetry) crosses the
 * chaos proxy. Cuts, latency and blackholes therefore barely reach RocketMQ's workers; the process
 * faults and the broker restarts do. The broker takes its listen port (16192), the port two below
 * (16190) and the one above (16193).
 */
export const ROCKETMQ_PORTS = {
  namesrv: 16185,
  grpc: 16186,
  proxy: 16187,
  proxyRemoting: 16188,
  broker: 16192,
} as const

/** The run's own clients: straight to the gRPC endpoint, never through the proxy. */
export const ROCKETMQ_DIRECT = `127.0.0.1:${ROCKETMQ_PORTS.grpc}`

const JAVA = ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true']

/** JVMs on a loaded 2-core machine: 30 s is not always enough to open a port. */
const START_TIMEOUT_MS = 120_000

class NameServer extends Managed {
  readonly name = 'rocketmq-namesrv'
  protected override readonly startTimeoutMs = START_TIMEOUT_MS
  constructor() {
    super(ROCKETMQ_PORTS.namesrv, 'rocketmq-namesrv')
    mkdirSync(join(this.dir, 'home'))
    writeFileSync(join(this.dir, 'namesrv.conf'), `listenPort=${ROCKETMQ_PORTS.namesrv}\nbindAddress=127.0.0.1\n`)
  }
  /** Where mqadmin, run by the project's script, keeps its logs: removed with the server's directory. */
  get adminDir(): string {
    return join(this.dir, 'admin')
  }
  protected command() {
    const args = ['-Xms64m', '-Xmx128m', ...JAVA, ...home(this.dir), '-cp', `${LIBS}/*`]
    args.push('org.apache.rocketmq.namesrv.NamesrvStartup', '-c', 'namesrv.conf')
    return { file: 'java', args }
  }
}

class BrokerWithProxy extends Managed {
  readonly name = 'rocketmq-broker'
  protected override readonly startTimeoutMs = START_TIMEOUT_MS
  constructor() {
    super(ROCKETMQ_PORTS.grpc, 'rocketmq-broker')
    mkdirSync(join(this.dir, 'home'))
    const store = join(this.dir, 'store')
    const broker = [
      'brokerClusterName=DefaultCluster',
      'brokerName=broker-a',
      'brokerId=0',
      `namesrvAddr=127.0.0.1:${ROCKETMQ_PORTS.namesrv}`,
      'brokerIP1=127.0.0.1',
      'bindAddress=127.0.0.1',
      `listenPort=${ROCKETMQ_PORTS.broker}`,
      'autoCreateTopicEnable=false',
      'autoCreateSubscriptionGroup=true',
      `storePathRootDir=${store}`,
      `storePathCommitLog=${store}/commitlog`,
      'mappedFileSizeCommitLog=67108864',
      'mappedFileSizeConsumeQueue=300000',
      // A message the broker confirmed is in the page cache, which a SIGKILL of the JVM does not
      // lose (the faults kill processes, never the machine): asynchronous flushing loses nothing here.
      'flushDiskType=ASYNC_FLUSH',
      'fileReservedTime=24',
    ]
    writeFileSync(join(this.dir, 'broker.conf'), `${broker.join('\n')}\n`)
    const proxy = {
      rocketMQClusterName: 'DefaultCluster',
      namesrvAddr: `127.0.0.1:${ROCKETMQ_PORTS.namesrv}`,
      grpcServerPort: ROCKETMQ_PORTS.grpc,
      remotingListenPort: ROCKETMQ_PORTS.proxyRemoting,
      topicRouteServiceCacheRefreshSeconds: 2,
    }
    writeFileSync(join(this.dir, 'proxy.json'), JSON.stringify(proxy))
  }
  protected command() {
    const args = ['-Xms128m', '-Xmx384m', ...JAVA, ...home(this.dir), '-cp', `${LIBS}/*`]
    args.push('org.apache.rocketmq.proxy.ProxyStartup', '-pm', 'local', '-pc', 'proxy.json', '-bc', 'broker.conf')
    return { file: 'java', args }
  }
}

/** RocketMQ's home (it refuses to start without one) and Java's user.home (its logs) in `dir`. */
function home(dir: string): string[] {
  return [`-Drocketmq.home.dir=${join(dir, 'home')}`, `-Duser.home=${join(dir, 'home')}`]
}

export class PrivateRocketMQ implements PrivateServer {
  readonly name = 'rocketmq'
  readonly port = ROCKETMQ_PORTS.grpc
  readonly #nameServer = new NameServer()
  readonly #broker = new BrokerWithProxy()

  async start(): Promise<void> {
    if (!existsSync(LIBS)) await run('bash', [SCRIPT, 'fetch'], { timeout: 600_000 })
    await this.#nameServer.start()
    await this.#broker.start()
  }

  restart(): Promise<void> {
    return this.#broker.restart()
  }

  async stop(): Promise<void> {
    await this.#broker.stop()
    await this.#nameServer.stop()
  }

  /**
   * Create NORMAL topics of 4 queues with the project's script (mqadmin updateTopic): the gRPC
   * proxy does not create a topic on first use.
   */
  async createTopics(names: readonly string[]): Promise<void> {
    const env = {
      ...process.env,
      ROCKETMQ_NAMESRV_PORT: String(ROCKETMQ_PORTS.namesrv),
      ROCKETMQ_GRPC_PORT: String(ROCKETMQ_PORTS.grpc),
      ROCKETMQ_PROXY_REMOTING_PORT: String(ROCKETMQ_PORTS.proxyRemoting),
      ROCKETMQ_BROKER_PORT: String(ROCKETMQ_PORTS.broker),
      ROCKETMQ_DIR: this.#nameServer.adminDir,
    }
    await run('bash', [SCRIPT, 'topics', ...names], { env, timeout: 180_000 })
  }
}
