// The private servers of a chaos run and the proxies in front of them: each started the first
// time a combination needs it, shared by the combinations after that (each uses its own stream,
// key prefix and run id), stopped by pid at the end.

import { PrivateKafka } from './kafka/server.js'
import { ChaosProxy } from './proxy.js'
import { PrivateRabbitMq, RABBITMQ_PORTS } from './rabbitmq/server.js'
import { PrivateRocketMQ, ROCKETMQ_PORTS } from './rocketmq/server.js'
import {
  PrivateMariadb,
  PrivateMosquitto,
  PrivateNats,
  PrivatePostgres,
  PrivateRedis,
  type PrivateServer,
} from './servers.js'

/** A private server and the proxy the workers reach it through. */
export interface Faultable {
  server: PrivateServer
  proxy: ChaosProxy
}

/**
 * `brokerRedis`: Redis as the broker (Redis Streams); `storeRedis`: Redis as the store;
 * `postgres`: the store, and in transaction mode also the ledger; `mariadb`: the store;
 * `nats`: NATS with JetStream, the broker; `mosquitto`: MQTT, the broker; `rabbitmq`: RabbitMQ
 * (quorum queues), the broker.
 */
export type ServerName =
  | 'brokerRedis'
  | 'storeRedis'
  | 'postgres'
  | 'mariadb'
  | 'nats'
  | 'mosquitto'
  | 'kafka'
  | 'rabbitmq'
  | 'rocketmq'

/** Ports: 161x0 is a server, 161x1 its proxy. */
const MAKE: Record<ServerName, () => { server: PrivateServer; proxyPort: number }> = {
  brokerRedis: () => ({ server: new PrivateRedis(16110), proxyPort: 16111 }),
  storeRedis: () => ({ server: new PrivateRedis(16120), proxyPort: 16121 }),
  postgres: () => ({ server: new PrivatePostgres(16130), proxyPort: 16131 }),
  nats: () => ({ server: new PrivateNats(16140), proxyPort: 16141 }),
  mariadb: () => ({ server: new PrivateMariadb(16150), proxyPort: 16151 }),
  mosquitto: () => ({ server: new PrivateMosquitto(16160), proxyPort: 16161 }),
  rabbitmq: () => ({ server: new PrivateRabbitMq(), proxyPort: RABBITMQ_PORTS.proxy }),
  // Kafka's workers' listener; it advertises the proxy's port (chaos/kafka/server.ts).
  kafka: () => ({ server: new PrivateKafka(), proxyPort: 16181 }),
  // RocketMQ's gRPC endpoint (chaos/rocketmq/server.ts).
  rocketmq: () => ({ server: new PrivateRocketMQ(), proxyPort: ROCKETMQ_PORTS.proxy }),
}

export class World {
  readonly #started = new Map<ServerName, Promise<Faultable>>()

  /** The server `name`, started (with its proxy) on first use. */
  get(name: ServerName): Promise<Faultable> {
    let started = this.#started.get(name)
    if (started === undefined) {
      started = (async () => {
        const { server, proxyPort } = MAKE[name]()
        await server.start()
        const proxy = new ChaosProxy({ listenPort: proxyPort, targetPort: server.port })
        await proxy.start()
        return { server, proxy }
      })()
      this.#started.set(name, started)
    }
    return started
  }

  /** Start these now, side by side. */
  async prepare(names: Iterable<ServerName>): Promise<void> {
    await Promise.all([...new Set(names)].map((name) => this.get(name)))
  }

  async stop(): Promise<void> {
    const all = await Promise.allSettled(this.#started.values())
    for (const result of all) {
      if (result.status !== 'fulfilled') continue
      await result.value.proxy.close()
      await result.value.server.stop()
    }
  }
}
