// kafkaTransform at work: one message stream of the consumer feeds a buffer; batches from it become
// transactions (outputs, then the inputs' offsets, then commit), one at a time; any failure of a
// transaction throws the buffer away and reads again from the group's committed offsets, after
// renewing the producer (kafka-transform-client.ts says why that order).
//
// Why a new stream after a rebalance rather than the one the client keeps: on a group join the
// client rewinds its stream to the committed offsets while fetches sent before the join may still
// deliver; records could then arrive out of order and around what is buffered. A stream opened
// after the join starts clean. It is opened before the old one is closed, so the client keeps its
// subscription and does not rejoin (it would, were the topics untracked in between).

import { setTimeout as sleep } from 'node:timers/promises'
import type { KafkaConsumerClient, KafkaMessage, KafkaMessageStream, KafkaRecordToSend } from './kafka-driver.js'
import {
  isFenced,
  type KafkaTransactionalProducerClient,
  type KafkaTransformTransaction,
  NEW_PRODUCER,
  renewProducer,
} from './kafka-transform-client.js'
import {
  coordinates,
  deadLetterRecord,
  type KafkaTransformOutput,
  type OutputFormat,
  outputRecords,
} from './kafka-transform-records.js'

/** Counters of one kafkaTransform. */
export interface KafkaTransformStats {
  /** Transactions committed. */
  committed: number
  /** Transactions that failed (aborted, or their outcome unknown); their inputs were read again. */
  aborted: number
  /** Input records whose offsets were committed (dead-lettered ones included). */
  messagesIn: number
  /** Output records committed. */
  messagesOut: number
  /** Inputs committed to the dead-letter topic instead of being transformed. */
  deadLettered: number
  /** Transform calls that threw and were tried again later. */
  retried: number
  /** Times the stream was opened again (after a failed transaction, a stream error or a rebalance). */
  restarts: number
}

export interface ResolvedTransformOptions<P> {
  topics: string[]
  transform: (
    payload: P,
    message: KafkaMessage,
  ) => readonly KafkaTransformOutput[] | Promise<readonly KafkaTransformOutput[]>
  decode: (message: KafkaMessage) => P
  format: OutputFormat
  batchSize: number
  maxBuffered: number
  maxAttempts: number
  backoff: (attempt: number) => number
  deadLetterTopic: (topic: string) => string
  startFrom: 'earliest' | 'latest'
  onError: (error: unknown) => void
}

/** What one input became: its records, or the reason to try it again later. */
type Outcome = { records: KafkaRecordToSend[]; deadLettered: boolean } | { retry: unknown }

export class TransformLoop<P> {
  readonly #consumer: KafkaConsumerClient
  readonly #producer: KafkaTransactionalProducerClient
  readonly #options: ResolvedTransformOptions<P>
  readonly #stats: KafkaTransformStats
  readonly #buffer: KafkaMessage[] = []
  /** Failed transform attempts per input (`topic/partition/offset`), kept across restarts. */
  readonly #attempts = new Map<string, number>()
  #stream: KafkaMessageStream | undefined
  #paused = false
  #stopping = false
  /** Set when the buffer can no longer be trusted: a transaction failed, the stream failed, the group rebalanced. */
  #restart = false
  /** While we open a stream ourselves: the group join that consume() may cause is not a rebalance to react to. */
  #opening = false
  #retryAt = 0
  #restartPause = 0
  #wake: (() => void) | undefined
  readonly #onJoin = (): void => {
    if (this.#opening || this.#stopping) return
    this.#restart = true
    this.#poke()
  }
  #done!: () => void
  readonly done = new Promise<void>((resolve) => {
    this.#done = resolve
  })
  /** The transaction under way, which close() lets finish. */
  #inFlight: Promise<boolean> | undefined
  #shuttingDown: Promise<void> | undefined

  constructor(
    consumer: KafkaConsumerClient,
    producer: KafkaTransactionalProducerClient,
    options: ResolvedTransformOptions<P>,
    stats: KafkaTransformStats,
  ) {
    this.#consumer = consumer
    this.#producer = producer
    this.#options = options
    this.#stats = stats
  }

  /** Take the transactionalId over (waiting out a crashed predecessor's transaction), then start reading. */
  async start(): Promise<void> {
    await renewProducer(this.#producer)
    await this.#open()
    this.#consumer.on('consumer:group:join', this.#onJoin)
    void this.#run()
  }

  /**
   * Stop taking batches, let the transaction under way finish (not a transform under way: its
   * batch is dropped, to be read again), close the stream. The clients stay open.
   */
  async close(): Promise<void> {
    this.#stopping = true
    this.#poke()
    await this.#inFlight?.catch(() => {})
    await this.#shutdown()
  }

  // --- Reading ----------------------------------------------------------------------------------

  async #open(): Promise<void> {
    this.#opening = true
    let stream: KafkaMessageStream
    try {
      stream = await this.#consumer.consume({
        topics: this.#options.topics,
        mode: 'committed',
        fallbackMode: this.#options.startFrom,
        autocommit: false,
        isolationLevel: 1, // read_committed: aborted outputs of an upstream transform are not inputs
      })
    } finally {
      this.#opening = false
    }
    if (this.#stopping) {
      // close() came while the stream was being opened (a recovery that waited on the broker).
      await stream.close().catch(() => {})
      return
    }
    const previous = this.#stream
    this.#stream = stream
    this.#paused = false
    stream.on('data', (message) => {
      if (this.#stream === stream && !this.#restart && !this.#stopping) this.#received(message)
    })
    stream.on('error', (error) => {
      if (this.#stream !== stream || this.#stopping) return
      this.#options.onError(error)
      this.#restart = true
      this.#poke()
    })
    stream.on('close', () => {
      if (this.#stream !== stream || this.#stopping) return
      this.#restart = true
      this.#poke()
    })
    await previous?.close().catch(() => {})
  }

  #received(message: KafkaMessage): void {
    this.#buffer.push(message)
    if (!this.#paused && this.#buffer.length >= this.#options.maxBuffered) {
      this.#paused = true
      this.#stream?.pause()
    }
    this.#poke()
  }

  #poke(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  /** Until something happens: a message, a restart to do, close(), or the time to retry a failed input. */
  async #idle(): Promise<void> {
    const waited = new Promise<void>((resolve) => {
      this.#wake = resolve
    })
    const delay = this.#retryAt - Date.now()
    if (delay > 0) {
      const timer = setTimeout(() => this.#poke(), delay)
      await waited
      clearTimeout(timer)
    } else {
      await waited
    }
  }

  // --- The loop ---------------------------------------------------------------------------------

  async #run(): Promise<void> {
    try {
      while (!this.#stopping) {
        if (this.#restart) {
          await this.#recover()
          continue
        }
        if (this.#buffer.length === 0 || Date.now() < this.#retryAt) {
          await this.#idle()
          continue
        }
        await this.#transact(this.#buffer.slice(0, this.#options.batchSize))
        if (this.#paused && this.#buffer.length < this.#options.maxBuffered / 2) {
          this.#paused = false
          this.#stream?.resume()
        }
      }
    } catch (error) {
      // Only a fenced producer ends here: another process holds the transactionalId now.
      this.#options.onError(error)
      this.#stopping = true
    }
    await this.#shutdown()
  }

  /** Drop what is buffered, renew the producer, read again from the committed offsets. */
  async #recover(): Promise<void> {
    if (this.#restartPause > 0) await sleep(this.#restartPause)
    if (this.#stopping) return
    this.#restartPause = Math.min(Math.max(this.#restartPause * 2, 250), 5000)
    this.#restart = false
    this.#buffer.length = 0
    this.#retryAt = 0
    this.#stats.restarts++
    try {
      await renewProducer(this.#producer)
      await this.#open()
    } catch (error) {
      if (isFenced(error)) throw fencedError(error)
      if (!this.#stopping) this.#options.onError(error)
      this.#restart = true
    }
  }

  /** The outputs of `batch` (or of the inputs before one whose transform failed) and their offsets, in one transaction. */
  async #transact(batch: KafkaMessage[]): Promise<void> {
    const records: KafkaRecordToSend[] = []
    const consumed: KafkaMessage[] = []
    let deadLettered = 0
    let outputs = 0
    let failed: { message: KafkaMessage; error: unknown } | undefined
    for (const message of batch) {
      const outcome = await this.#outcomeOf(message)
      if ('retry' in outcome) {
        failed = { message, error: outcome.retry }
        break
      }
      records.push(...outcome.records)
      consumed.push(message)
      if (outcome.deadLettered) deadLettered++
      else outputs += outcome.records.length
    }
    if (consumed.length > 0) {
      if (this.#stopping || this.#restart) return
      const committing = this.#commit(records, consumed)
      this.#inFlight = committing
      if (!(await committing)) return
      this.#buffer.splice(0, consumed.length)
      this.#stats.committed++
      this.#stats.messagesIn += consumed.length
      this.#stats.messagesOut += outputs
      this.#stats.deadLettered += deadLettered
      this.#restartPause = 0
      for (const message of consumed) this.#attempts.delete(coordinates(message))
    }
    if (failed !== undefined) {
      // The inputs before it are committed; it and those after it wait, in order, for its next attempt.
      const attempt = this.#attempts.get(coordinates(failed.message)) ?? 1
      this.#stats.retried++
      this.#options.onError(failed.error)
      this.#retryAt = Date.now() + this.#options.backoff(attempt)
    }
  }

  /** Decode and transform one input. A payload that cannot be decoded, or a transform failing for the last allowed time, is dead-lettered. */
  async #outcomeOf(message: KafkaMessage): Promise<Outcome> {
    const deadLetter = (reason: string, attempts: number): Outcome => ({
      records: [deadLetterRecord(message, this.#options.deadLetterTopic(message.topic), reason, attempts)],
      deadLettered: true,
    })
    let payload: P
    try {
      payload = this.#options.decode(message)
    } catch (error) {
      return deadLetter(`cannot decode the payload: ${messageOf(error)}`, 1)
    }
    try {
      const outputs = await this.#options.transform(payload, message)
      return { records: outputRecords(message, outputs, this.#options.format), deadLettered: false }
    } catch (error) {
      const where = coordinates(message)
      const attempts = (this.#attempts.get(where) ?? 0) + 1
      if (attempts >= this.#options.maxAttempts)
        return deadLetter(`the transform failed: ${messageOf(error)}`, attempts)
      this.#attempts.set(where, attempts)
      return { retry: error }
    }
  }

  /** One transaction: outputs, then each partition's last offset, then commit. True once committed. */
  async #commit(records: KafkaRecordToSend[], consumed: KafkaMessage[]): Promise<boolean> {
    let transaction: KafkaTransformTransaction | undefined
    try {
      transaction = await this.#producer.beginTransaction({ ...NEW_PRODUCER })
      // One send for all the records: the client loses partitions added by sends in flight together.
      if (records.length > 0) await transaction.send({ messages: records })
      await transaction.addConsumer(this.#consumer)
      // One at a time: the client merges concurrent addOffset calls into the first one's request.
      for (const last of lastOfEachPartition(consumed)) await transaction.addOffset(last)
      await transaction.commit()
      return true
    } catch (error) {
      this.#stats.aborted++
      await transaction?.abort().catch(() => {})
      if (isFenced(error)) throw fencedError(error)
      this.#options.onError(error)
      this.#restart = true
      return false
    }
  }

  #shutdown(): Promise<void> {
    this.#shuttingDown ??= this.#release()
    return this.#shuttingDown
  }

  async #release(): Promise<void> {
    this.#consumer.off('consumer:group:join', this.#onJoin)
    const stream = this.#stream
    this.#stream = undefined
    this.#buffer.length = 0
    await stream?.close().catch(() => {})
    this.#done()
  }
}

/** The input with the highest offset of each partition: committing its offset + 1 covers the others. */
function lastOfEachPartition(messages: readonly KafkaMessage[]): KafkaMessage[] {
  const last = new Map<string, KafkaMessage>()
  for (const message of messages) {
    const id = `${message.topic}:${message.partition}`
    const seen = last.get(id)
    if (seen === undefined || seen.offset < message.offset) last.set(id, message)
  }
  return [...last.values()]
}

function fencedError(cause: unknown): Error {
  return new Error(
    'kafkaTransform stopped: another producer took over its transactionalId (or the coordinator aborted a ' +
      "transaction that outlived the producer's `timeout`, which is also the transaction timeout)",
    { cause },
  )
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
