// The subset of @platformatic/kafka (1.x) that idem/kafka uses, so that importing idem/kafka never
// loads the client: its Consumer, MessagesStream, Producer and Transaction fit these types as they
// are. A second client library can be added later by fitting (or adapting to) the same subset.

/** A header map as the client decodes it: Buffers by default, strings with string deserializers. */
export type KafkaHeaders = Map<unknown, unknown>

/** One consumed record. */
export interface KafkaMessage {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: unknown
  readonly value: unknown
  readonly headers: KafkaHeaders
  readonly timestamp: bigint
}

/** A partition's offset to commit: the next offset the group should read. */
export interface KafkaCommitOffset {
  topic: string
  partition: number
  offset: bigint
  leaderEpoch: number
}

export interface KafkaAssignment {
  topic: string
  partitions: number[]
}

/** What `consumer.consume(…)` resolves to: a Readable of messages in object mode. */
export interface KafkaMessageStream {
  on(event: 'data', listener: (message: KafkaMessage) => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'close', listener: () => void): unknown
  pause(): unknown
  resume(): unknown
  close(): Promise<void>
}

export interface KafkaConsumeOptions {
  topics: string[]
  /** 'committed': start from the group's committed offsets. */
  mode: 'committed'
  /** Where a partition with no committed offset starts. */
  fallbackMode: 'earliest' | 'latest'
  autocommit: false
  /** 1: read_committed (skip aborted transactions' records). */
  isolationLevel?: number
  maxWaitTime?: number
  sessionTimeout?: number
  heartbeatInterval?: number
  rebalanceTimeout?: number
}

export interface KafkaListOffsetsOptions {
  topics: string[]
  /** Only these partitions of each topic. */
  partitions?: Record<string, number[]>
  /** -1n: the end of each partition (default); -2n: its first offset. */
  timestamp?: bigint
  /** 1: read_committed (the last stable offset), 0: read_uncommitted (the high watermark). */
  isolationLevel?: number
}

/** A @platformatic/kafka `Consumer`: a member of one consumer group (its `groupId`). */
export interface KafkaConsumerClient {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string | null
  readonly assignments: KafkaAssignment[] | null
  consume(options: KafkaConsumeOptions): Promise<KafkaMessageStream>
  commit(options: { offsets: KafkaCommitOffset[] }): Promise<void>
  /**
   * Offsets of partitions, by topic (an array indexed by partition): the end of each partition (the
   * high watermark; the last stable offset with `isolationLevel` 1) with no `timestamp` or -1n, its
   * first offset with -2n. Only for `lag()`: a client without it has no lag.
   */
  listOffsets?(options: KafkaListOffsetsOptions): Promise<Map<string, bigint[]>>
  /** The group's committed offsets (the next offset to read; -1n where none), by topic, indexed by partition. Only for `lag()`. */
  listCommittedOffsets?(options: { topics: KafkaAssignment[] }): Promise<Map<string, bigint[]>>
  on(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
  close(force?: boolean): Promise<void>
}

/** A record to produce, as Buffers: what a Producer with the default serializers takes. */
export interface KafkaRecordToSend {
  topic: string
  key?: Buffer
  value?: Buffer
  headers?: Map<Buffer, Buffer>
  partition?: number
}

export interface KafkaSendOptions {
  messages: KafkaRecordToSend[]
  /** -1: every in-sync replica. */
  acks?: number
  idempotent?: boolean
}

/** A @platformatic/kafka `Producer`, as the producer and the dead-letter writer use it (transactions: kafka-transform-client.ts). */
export interface KafkaProducerClient {
  send(options: KafkaSendOptions): Promise<unknown>
  close(force?: boolean): Promise<void>
}
