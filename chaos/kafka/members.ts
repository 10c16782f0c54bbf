// What the Kafka sides of the run share: the topic names of a combination, and how a worker's
// consumer-group member is configured.

import { Consumer, Producer } from '@platformatic/kafka'

/** Kafka topic names allow letters, digits, '.', '_' and '-': the run's topic with the rest made dashes. */
export function kafkaNames(topic: string): { topic: string; dead: string } {
  const base = topic.replace(/[^A-Za-z0-9-]/g, '-')
  return { topic: base, dead: `${base}-dead` }
}

/** Partitions per topic: several, so that a member that dies or is frozen hands its share to the others. */
export const KAFKA_PARTITIONS = 4

/**
 * A member of the workers' group, through the proxy. Kafka has no per-message redelivery timer:
 * a dead or frozen member's partitions move to the others when its session expires. 5 s (two and a
 * half leases, heartbeats every 500 ms) sits inside the run's stalls (4 to 6 s): some frozen workers
 * keep their partitions (their lapsed claims resume unchallenged), others lose them while frozen
 * (their lapsed claims are taken over, and fencing must stop their late completions), and a
 * killed worker's partitions come back within a few leases. It outlasts the latency faults and most
 * blackholes, so that those are network faults, not a rebalance each.
 */
export function groupMember(o: { brokerPort: number; group: string; clientId: string }): Consumer {
  return new Consumer({
    clientId: o.clientId,
    groupId: o.group,
    bootstrapBrokers: [`127.0.0.1:${o.brokerPort}`],
    sessionTimeout: 5000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10_000,
    connectTimeout: 3000,
    requestTimeout: 5000,
    // Enough to ride out a broker restart (a JVM start takes up to 30 s here): a client whose
    // rejoin runs out of retries emits 'error' and stays out of the group, as an application
    // configured with too few would find.
    retries: 120,
    retryDelay: 500,
  })
}

/** A producer for the dead letters of one worker, through the proxy as well. */
export function deadLetterProducer(o: { brokerPort: number; clientId: string }): Producer {
  return new Producer({
    clientId: o.clientId,
    bootstrapBrokers: [`127.0.0.1:${o.brokerPort}`],
    idempotent: true,
    connectTimeout: 3000,
    retries: 20,
    retryDelay: 250,
  })
}
