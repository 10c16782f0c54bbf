// kafkaTransform: exactly-once consume-transform-produce inside Kafka. Each batch of inputs becomes
// one Kafka transaction that writes the outputs and commits the inputs' offsets for the group; a
// read_committed reader downstream sees each input's outputs once, whatever crashed or was retried.
// The loop is kafka-transform-loop.ts; the producer's part, kafka-transform-client.ts; the records,
// kafka-transform-records.ts.
//
// What it does not cover: effects outside Kafka. A transform that charges a card, sends an e-mail
// or writes to a database may run more than once for one input (after an aborted transaction, a
// crash, a rebalance); only what it returns is written exactly once. For effects elsewhere, consume
// with consumeKafka and Idem records (or publish the outputs and have the effects consumed that way).
//
// What it relies on: inputs read with read_committed leave out aborted records. Kafka 4.1 leaves
// aborted batches out of a read_committed fetch itself; @platformatic/kafka 1.35 does not use the
// aborted-transactions list of the fetch response, so a broker that sent aborted batches (as the
// protocol allows) would have them read as inputs.

import { defaultBackoff } from '../../consumer/decide.js'
import { decodeJson } from '../../consumer/decode-json.js'
import { positiveInteger } from '../../contract/duration.js'
import type { KafkaConsumerClient, KafkaMessage } from './kafka-driver.js'
import { MESSAGE_ID_HEADER } from './kafka-headers.js'
import type { KafkaTransactionalProducerClient } from './kafka-transform-client.js'
import { type KafkaTransformStats, type ResolvedTransformOptions, TransformLoop } from './kafka-transform-loop.js'
import type { KafkaTransformOutput } from './kafka-transform-records.js'

export interface KafkaTransformOptions<P> {
  /**
   * Your @platformatic/kafka `Consumer` (its `groupId` is the group whose offsets the transactions
   * commit), with the default Buffer deserializers. It stays yours: `close()` stops reading but
   * leaves it open. Use it for this transform only: its offsets are committed by the transactions.
   */
  client: KafkaConsumerClient
  /**
   * Your @platformatic/kafka `Producer`, created with `idempotent: true` and a `transactionalId`
   * that is the same each time this process (this instance of the pipeline) starts and is used by
   * nothing else: starting again with it aborts what the previous run left open and fences that run
   * if it is still alive. Its `timeout` is also the transaction timeout (default 5 s). It stays
   * yours, and is used only by this transform while it runs.
   */
  producer: KafkaTransactionalProducerClient
  /** The topics to read. */
  topics: readonly string[]
  /**
   * The input's outputs: zero or more messages (`payload`, optional `destination` topic, `headers`,
   * `id`). Without an `id`, an output gets `topic/partition/offset/index` of the input, the same on
   * every re-run. It may run more than once per input: keep it free of effects outside Kafka. A
   * throw is retried with `backoff` (the inputs before it are committed, it and those after it
   * wait), and after `maxAttempts` the input goes to the dead-letter topic.
   */
  transform: (
    payload: P,
    message: KafkaMessage,
  ) => readonly KafkaTransformOutput[] | Promise<readonly KafkaTransformOutput[]>
  /** The topic of outputs that name no `destination`. Default: none (every output must name one). */
  topic?: string
  /** Most inputs per transaction. Default 100. */
  batchSize?: number
  /** Record to payload. Default: `decodeJson` of the value (UTF-8 JSON). A throw dead-letters the record with the reason. */
  decode?: (message: KafkaMessage) => P
  /** Payload to record value. Default `JSON.stringify`. */
  encode?: (payload: unknown) => string | Buffer
  /** An output's record key. Default: the input record's key (so outputs keep the inputs' partitioning by key). */
  recordKey?: (output: KafkaTransformOutput, input: KafkaMessage) => string | Buffer | undefined
  /** The header carrying each output's id. Default 'idem-message-id'. */
  idHeader?: string
  /** Transform calls per input before it is dead-lettered. Default 5. */
  maxAttempts?: number
  /** Delay before trying a failed transform again, after attempt `n` (1-based). Default 1 s doubling to 60 s, with jitter. */
  backoff?: (attempt: number) => number
  /** Where undecodable inputs and those out of attempts go (in the same transaction). Default `<topic>.dead-letter`. It must exist. */
  deadLetterTopic?: string | ((topic: string) => string)
  /** Where a partition the group has never committed starts. Default 'earliest'. */
  startFrom?: 'earliest' | 'latest'
  /** Failures it recovered from (a transaction aborted, a transform that threw, the stream failing). Default `console.warn`. */
  onError?: (error: unknown) => void
}

export interface KafkaTransformHandle {
  readonly stats: Readonly<KafkaTransformStats>
  /** Resolves once the transform stopped: after `close()`, or when another producer took its transactionalId over. */
  readonly done: Promise<void>
  /**
   * Stop reading, let the transaction under way commit, and stop. Inputs read and not committed
   * are read again by whoever runs the transform next. The consumer and the producer stay open.
   */
  close(): Promise<void>
}

/**
 * Read `topics` as a member of the client's group and, for each batch of inputs, write their
 * outputs and commit their offsets in one Kafka transaction: begin, send every output (each with
 * its stable id in the `idem-message-id` header), add the inputs' offsets to the transaction for
 * the group, commit. When anything fails the transaction is aborted, the producer renewed and the
 * inputs read again from the group's committed offsets; offsets are never committed outside a
 * transaction. Inputs are read with read_committed.
 *
 * Readers of the outputs must read with read_committed (`isolationLevel: 1`, kcat `-X
 * isolation.level=read_committed`) to see each once; a read_uncommitted reader also sees the
 * records of aborted transactions (same ids). Limits: effects outside Kafka are not covered (see
 * the top of this file); a batch waits for the transform of each of its inputs in turn; a
 * partition that moves to another member while this one is committing may be read there from the
 * offsets before that commit (the client reads offsets without require_stable), which can write
 * that batch's outputs twice; records with the same id mark those copies.
 *
 * @example
 * ```ts
 * import { Consumer, Producer } from '@platformatic/kafka'
 * import { kafkaTransform } from 'idem/kafka'
 *
 * const brokers = ['127.0.0.1:9092']
 * const client = new Consumer({ clientId: 'enricher', groupId: 'enricher', bootstrapBrokers: brokers })
 * const producer = new Producer({
 *   clientId: 'enricher',
 *   bootstrapBrokers: brokers,
 *   idempotent: true,
 *   transactionalId: `enricher-${instanceNumber}`, // the same on every restart of this instance
 * })
 * const enricher = await kafkaTransform<Order>({
 *   client,
 *   producer,
 *   topics: ['orders'],
 *   topic: 'orders-enriched',
 *   transform: (order) => [{ payload: { ...order, region: regionOf(order.country) } }],
 * })
 * // on shutdown:
 * await enricher.close()
 * await client.close()
 * await producer.close()
 * ```
 */
export async function kafkaTransform<P = unknown>(options: KafkaTransformOptions<P>): Promise<KafkaTransformHandle> {
  const resolved = resolveTransformOptions(options)
  const stats: KafkaTransformStats = {
    committed: 0,
    aborted: 0,
    messagesIn: 0,
    messagesOut: 0,
    deadLettered: 0,
    retried: 0,
    restarts: 0,
  }
  const loop = new TransformLoop(options.client, options.producer, resolved, stats)
  try {
    await loop.start()
  } catch (error) {
    await loop.close()
    throw error
  }
  return { stats, done: loop.done, close: () => loop.close() }
}

function resolveTransformOptions<P>(options: KafkaTransformOptions<P>): ResolvedTransformOptions<P> {
  if (options === null || typeof options !== 'object') throw new TypeError('kafkaTransform needs an options object')
  if (typeof options.client?.consume !== 'function') {
    throw new TypeError('kafkaTransform needs client: a @platformatic/kafka Consumer (its groupId is the group)')
  }
  const producer = options.producer
  if (typeof producer?.beginTransaction !== 'function' || typeof producer.initIdempotentProducer !== 'function') {
    throw new TypeError(
      'kafkaTransform needs producer: a @platformatic/kafka Producer created with idempotent: true and a transactionalId',
    )
  }
  const { topics } = options
  if (!Array.isArray(topics) || topics.length === 0 || topics.some((t) => typeof t !== 'string' || t === '')) {
    throw new TypeError('kafkaTransform needs topics: a non-empty array of topic names')
  }
  if (typeof options.transform !== 'function') {
    throw new TypeError('kafkaTransform needs transform: (payload, message) => the messages to write')
  }
  if (options.topic !== undefined && (typeof options.topic !== 'string' || options.topic === '')) {
    throw new TypeError('topic must be a topic name')
  }
  const startFrom = options.startFrom ?? 'earliest'
  if (startFrom !== 'earliest' && startFrom !== 'latest') {
    throw new TypeError(`startFrom must be 'earliest' or 'latest', got ${JSON.stringify(startFrom)}`)
  }
  const dead = options.deadLetterTopic ?? ((topic: string) => `${topic}.dead-letter`)
  if (typeof dead !== 'function' && (typeof dead !== 'string' || dead === '')) {
    throw new TypeError('deadLetterTopic must be a topic name or a function of the source topic')
  }
  const batchSize = positiveInteger(options.batchSize ?? 100, 'batchSize')
  return {
    topics: [...topics],
    transform: options.transform,
    decode: options.decode ?? decodeValue<P>,
    format: {
      topic: options.topic,
      idHeader: options.idHeader ?? MESSAGE_ID_HEADER,
      encode: options.encode ?? JSON.stringify,
      recordKey: options.recordKey,
    },
    batchSize,
    // Enough to fill the next batch while one commits; past it the stream pauses.
    maxBuffered: batchSize * 4,
    maxAttempts: positiveInteger(options.maxAttempts ?? 5, 'maxAttempts'),
    backoff: options.backoff ?? defaultBackoff,
    deadLetterTopic: typeof dead === 'string' ? () => dead : dead,
    startFrom,
    onError: options.onError ?? ((error) => console.warn('idem/kafka transform:', error)),
  }
}

function decodeValue<P>(message: KafkaMessage): P {
  const { value } = message
  if (value === undefined || value === null) throw new SyntaxError('the record has no value (a tombstone)')
  return decodeJson(value as Uint8Array | string) as P
}
