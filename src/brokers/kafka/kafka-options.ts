// Options of consumeKafka and their resolution into plain values, with the reasons for each default.

import { decodeJson } from '../../consumer/decode-json.js'
import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import type { KafkaConsumerClient, KafkaMessage, KafkaProducerClient } from './kafka-driver.js'
import { headerText, MESSAGE_ID_HEADER, textOf } from './kafka-headers.js'

export interface KafkaOptions<P> {
  /**
   * Your @platformatic/kafka `Consumer` (its `groupId` is the group), with the default Buffer
   * deserializers. It stays yours: `close()` stops consuming but leaves it open.
   */
  client: KafkaConsumerClient
  /** Your @platformatic/kafka `Producer`: it writes dead letters (acks from every in-sync replica). It stays yours. */
  producer: KafkaProducerClient
  topics: readonly string[]
  /**
   * What must be handled in order. 'partition' (default): a partition's messages one at a time, in
   * offset order, partitions in parallel. 'key': messages with the same record key in order, other
   * keys of the same partition in parallel (a record without a key is ordered by its partition).
   */
  ordering?: 'partition' | 'key'
  /**
   * Where a partition the group has never committed starts. Default 'earliest': messages produced
   * before the group existed are handled (Idem turns any re-read into replays). 'latest' skips them.
   */
  startFrom?: 'earliest' | 'latest'
  /** Hand fetched messages to the consumer core as batches (one claim round trip each). Default true. */
  batch?: boolean
  /** Most messages handed to the core at once. Default 64. */
  batchSize?: number
  /** Fetched messages held and not settled before fetching pauses. Default 1024. */
  maxBuffered?: number
  /** How long a durable outcome waits before its offset is committed (commits are coalesced). Default '100ms'. */
  commitInterval?: Duration
  /** The header carrying the producer's message id, the key. Default 'idem-message-id'. */
  keyHeader?: string
  /**
   * Use the record key as the idempotency key when there is no message id header. Only if each
   * logical message has a key of its own (an order id, a payment id): records that share a key
   * would be taken for duplicates. Default false.
   */
  recordKeyIsUnique?: boolean
  /** Compute the key yourself; `undefined` falls back to the header, the record key (when unique), then `topic/partition/offset`. */
  key?: (message: KafkaMessage) => string | undefined
  /** Record to payload. Default: `decodeJson` of the value (UTF-8 JSON). A throw dead-letters the record with the reason. */
  decode?: (message: KafkaMessage) => P
  /** Where poison messages go: a topic name, or one per source topic. Default `<topic>.dead-letter`. */
  deadLetterTopic?: string | ((topic: string) => string)
  /** Read only committed records of transactional producers (`read_committed`). Default true. */
  readCommitted?: boolean
  /**
   * How long one fetch waits for records when there are none (the client's `maxWaitTime`, whose own
   * default is 5 s). Short, because a fetch sent before a rebalance that answers after it can put
   * back a stale position (a client fault): the shorter the wait, the smaller that window. Records
   * that are there are returned at once whatever this is. Default '500ms'.
   */
  fetchWait?: Duration
  /** Errors the adapter recovered from (a fetch that failed, a commit refused). Default `console.warn`. */
  onError?: (error: unknown) => void
}

export interface ResolvedKafkaOptions<P> {
  topics: string[]
  byKey: boolean
  startFrom: 'earliest' | 'latest'
  batch: boolean
  batchSize: number
  maxBuffered: number
  commitIntervalMs: number
  key: (message: KafkaMessage) => string | undefined
  decode: (message: KafkaMessage) => P
  deadLetterTopic: (topic: string) => string
  readCommitted: boolean
  fetchWaitMs: number
  onError: (error: unknown) => void
}

export function resolveKafkaOptions<P>(options: KafkaOptions<P>): ResolvedKafkaOptions<P> {
  const { topics } = options
  if (!Array.isArray(topics) || topics.length === 0 || topics.some((t) => typeof t !== 'string' || t === '')) {
    throw new TypeError('consumeKafka needs topics: a non-empty array of topic names')
  }
  const ordering = options.ordering ?? 'partition'
  if (ordering !== 'partition' && ordering !== 'key') {
    throw new TypeError(`ordering must be 'partition' or 'key', got ${JSON.stringify(ordering)}`)
  }
  const startFrom = options.startFrom ?? 'earliest'
  if (startFrom !== 'earliest' && startFrom !== 'latest') {
    throw new TypeError(`startFrom must be 'earliest' or 'latest', got ${JSON.stringify(startFrom)}`)
  }
  const keyHeader = options.keyHeader ?? MESSAGE_ID_HEADER
  const recordKeyIsUnique = options.recordKeyIsUnique ?? false
  const own = options.key
  const dead = options.deadLetterTopic ?? ((topic: string) => `${topic}.dead-letter`)
  if (typeof dead !== 'function' && (typeof dead !== 'string' || dead === '')) {
    throw new TypeError('deadLetterTopic must be a topic name or a function of the source topic')
  }
  return {
    topics: [...topics],
    byKey: ordering === 'key',
    startFrom,
    batch: options.batch ?? true,
    batchSize: positiveInteger(options.batchSize ?? 64, 'batchSize'),
    maxBuffered: positiveInteger(options.maxBuffered ?? 1024, 'maxBuffered'),
    commitIntervalMs: toMs(options.commitInterval ?? '100ms', 'commitInterval'),
    key: (message) => {
      const mine = own?.(message)
      if (mine !== undefined && mine !== '') return mine
      const header = headerText(message.headers, keyHeader)
      if (header !== undefined && header !== '') return header
      if (recordKeyIsUnique && message.key !== undefined && message.key !== null) {
        const key = textOf(message.key)
        if (key !== '') return key
      }
      return undefined
    },
    decode: options.decode ?? decodeValue<P>,
    deadLetterTopic: typeof dead === 'string' ? () => dead : dead,
    readCommitted: options.readCommitted ?? true,
    fetchWaitMs: toMs(options.fetchWait ?? '500ms', 'fetchWait'),
    onError: options.onError ?? ((error) => console.warn('idem/kafka:', error)),
  }
}

function decodeValue<P>(message: KafkaMessage): P {
  const { value } = message
  if (value === undefined || value === null) throw new SyntaxError('the record has no value (a tombstone)')
  return decodeJson(value as Uint8Array | string) as P
}
