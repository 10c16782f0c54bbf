// The part of a transactional @platformatic/kafka Producer that kafkaTransform uses, and the two
// things it must do around the client (checked against @platformatic/kafka 1.35 and Kafka 4.1):
//
// - Begin with producer id -1 and epoch -1. Given nothing, the client sends InitProducerId with id
//   0 and epoch 0, which the transaction coordinator reads as "producer 0, epoch 0, bump me"; for a
//   transactionalId that already has a producer id (the process that crashed had one) it answers
//   PRODUCER_FENCED, so a restarted process could never begin a transaction. -1/-1 means "a new
//   producer for this transactionalId": the coordinator aborts whatever transaction the previous
//   holder left open, waits until it is complete, and fences that holder.
//
// - Renew the producer ("fence") before reading the group's offsets again. The client reads them
//   without require_stable, so offsets of a transaction whose commit markers are still being
//   written are not returned yet: reading right after a commit whose answer was lost (or after a
//   crash) could rewind to before that batch and produce it a second time. InitProducerId answers
//   only once the previous transaction of this transactionalId is complete (markers written), so
//   offsets read after it include everything this producer committed.

import type { KafkaConsumerClient, KafkaMessage, KafkaRecordToSend } from './kafka-driver.js'

/** A @platformatic/kafka `Transaction`, as kafkaTransform uses it. */
export interface KafkaTransformTransaction {
  send(options: { messages: KafkaRecordToSend[] }): Promise<unknown>
  /** AddOffsetsToTxn for the consumer's group. */
  addConsumer(consumer: KafkaConsumerClient): Promise<void>
  /** TxnOffsetCommit of the message's offset + 1, with the generation and member id it was fetched under. */
  addOffset(message: KafkaMessage): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
  /** Forget the transaction on this side only (the producer can begin another). */
  cancel(): Promise<void>
}

/**
 * A @platformatic/kafka `Producer` created with a `transactionalId` (stable across restarts of the
 * same process: it is what fences the previous holder) and `idempotent: true`. Its `timeout` is
 * also the transaction timeout the coordinator enforces (default 5 s).
 */
export interface KafkaTransactionalProducerClient {
  beginTransaction(options: { producerId: bigint; producerEpoch: number }): Promise<KafkaTransformTransaction>
  initIdempotentProducer(options: { producerId: bigint; producerEpoch: number }): Promise<unknown>
  /** The transaction begun and not yet committed, aborted or cancelled. */
  readonly transaction: KafkaTransformTransaction | undefined
  close(force?: boolean): Promise<void>
}

/** InitProducerId's "a new producer": see the top of this file. */
export const NEW_PRODUCER = { producerId: -1n, producerEpoch: -1 } as const

/**
 * Take the transactionalId over anew: drop any transaction held on this side, then InitProducerId
 * (with a transaction begun, so that the client sends the transactionalId). Resolves once every
 * earlier transaction of this transactionalId is complete, ours and a crashed predecessor's.
 */
export async function renewProducer(producer: KafkaTransactionalProducerClient): Promise<void> {
  await producer.transaction?.cancel()
  const transaction = await producer.beginTransaction({ ...NEW_PRODUCER })
  try {
    await producer.initIdempotentProducer({ ...NEW_PRODUCER })
  } finally {
    await transaction.cancel()
  }
}

/** Another producer holds the transactionalId now (or the coordinator aborted a transaction that outlived its timeout). */
export function isFenced(error: unknown): boolean {
  const seen = new Set<unknown>()
  const visit = (e: unknown): boolean => {
    if (e === null || typeof e !== 'object' || seen.has(e)) return false
    seen.add(e)
    const id = (e as { apiId?: unknown }).apiId
    if (id === 'PRODUCER_FENCED' || id === 'INVALID_PRODUCER_EPOCH') return true
    const nested = (e as { errors?: unknown }).errors
    if (Array.isArray(nested) && nested.some(visit)) return true
    return visit((e as { cause?: unknown }).cause)
  }
  return visit(error)
}
