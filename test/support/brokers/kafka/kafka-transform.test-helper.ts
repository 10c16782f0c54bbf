// For the kafkaTransform tests: a transactional producer client, and the same client with a fault
// at the Nth commit (refused before it reaches Kafka, done but its answer lost, or the process
// killed with the outputs sent and the offsets added): the failures the transform must survive.

import { Producer } from '@platformatic/kafka'
import type {
  KafkaTransactionalProducerClient,
  KafkaTransformTransaction,
} from '../../../../src/brokers/kafka/kafka-transform-client.js'
import { KAFKA } from './kafka.test-helper.js'

/** A producer for kafkaTransform: idempotent, with `transactionalId`, finite retries. */
export function transactionalClient(transactionalId: string, broker = KAFKA): Producer {
  return new Producer({
    clientId: `idem-test-${transactionalId}`,
    bootstrapBrokers: [broker],
    idempotent: true,
    transactionalId,
    retries: 20,
    retryDelay: 100,
  })
}

/** What happens at a commit: nothing, refused before Kafka sees it, committed with the answer lost, or SIGKILL. */
export type CommitFault = 'before' | 'after' | 'kill' | undefined

/** `producer` whose `n`th transaction commit (1-based) meets `fault(n)`. */
export function withCommitFault(
  producer: Producer,
  fault: (n: number) => CommitFault,
): KafkaTransactionalProducerClient & { readonly commits: number } {
  let commits = 0
  type Real = NonNullable<Producer['transaction']>
  const wrap = (transaction: Real): KafkaTransformTransaction => ({
    send: (options) => transaction.send(options),
    addConsumer: (consumer) => transaction.addConsumer(consumer as never),
    addOffset: (message) => transaction.addOffset(message as never),
    abort: () => transaction.abort(),
    cancel: () => transaction.cancel(),
    async commit() {
      const what = fault(++commits)
      if (what === 'kill') {
        process.kill(process.pid, 'SIGKILL')
        await new Promise(() => {})
      }
      if (what === 'before') throw new Error(`injected: commit ${commits} refused before it reached Kafka`)
      await transaction.commit()
      if (what === 'after') throw new Error(`injected: commit ${commits} went through, its answer was lost`)
    },
  })
  return {
    get commits() {
      return commits
    },
    beginTransaction: async (options) => wrap(await producer.beginTransaction(options)),
    initIdempotentProducer: (options) => producer.initIdempotentProducer(options),
    get transaction() {
      const transaction = producer.transaction
      return transaction === undefined ? undefined : wrap(transaction)
    },
    close: (force) => producer.close(force),
  }
}
