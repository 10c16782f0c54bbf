// What kafkaTransform writes: an input's outputs as records (each with its stable id), a poison
// input as a dead-letter record, and the source coordinates ids are derived from.

import { createHash } from 'node:crypto'
import { MAX_KEY_LENGTH, validateKey } from '../../core/key.js'
import type { OutgoingMessage } from '../../producer/types.js'
import type { KafkaMessage, KafkaRecordToSend } from './kafka-driver.js'
import { bufferHeaders, DEAD_LETTER_HEADERS, toBuffer } from './kafka-headers.js'

/**
 * One message the transform emits: an OutgoingMessage whose `id` may be left out, in which case
 * it is derived from the input's coordinates and the output's index (see `outputId`).
 */
export type KafkaTransformOutput<O = unknown> = Omit<OutgoingMessage<O>, 'id'> & { readonly id?: string }

/** What turns an output into a record: the options kafkaTransform resolved. */
export interface OutputFormat {
  /** The topic of outputs without a `destination`; undefined: every output must name one. */
  topic: string | undefined
  idHeader: string
  encode: (payload: unknown) => string | Buffer
  /** undefined: the input record's key. */
  recordKey: ((output: KafkaTransformOutput, input: KafkaMessage) => string | Buffer | undefined) | undefined
}

/** `topic/partition/offset`: where an input record is, which no other record shares. */
export function coordinates(message: KafkaMessage): string {
  return `${message.topic}/${message.partition}/${message.offset}`
}

/**
 * The id of the `index`th output of `input`: `topic/partition/offset/index`. The same input read
 * again (after an aborted transaction, a crash, a rebalance) yields the same ids, so a reader that
 * also sees aborted records (read_uncommitted), or a consumer with Idem records downstream, can tell
 * the copies apart from new messages. A topic name long enough to push it past 255 characters is
 * hashed instead (SHA-256 of the same text).
 */
export function outputId(input: KafkaMessage, index: number): string {
  const id = `${coordinates(input)}/${index}`
  return id.length <= MAX_KEY_LENGTH ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`
}

/** The records of `input`'s outputs; throws (a TypeError, an InvalidKeyError) for an output that cannot be one. */
export function outputRecords(
  input: KafkaMessage,
  outputs: readonly KafkaTransformOutput[],
  format: OutputFormat,
): KafkaRecordToSend[] {
  if (!Array.isArray(outputs)) {
    throw new TypeError(`the transform must return an array of messages (or a promise of one), got ${typeof outputs}`)
  }
  return outputs.map((output, index) => {
    if (output === null || typeof output !== 'object') {
      throw new TypeError(`output ${index} of ${coordinates(input)} is not a message object`)
    }
    const id = validateKey(output.id ?? outputId(input, index), 'key')
    const topic = output.destination ?? format.topic
    if (topic === undefined || topic === '') {
      throw new TypeError(`output ${id} has no destination, and kafkaTransform was given no default { topic }`)
    }
    const encoded = format.encode(output.payload)
    if (typeof encoded !== 'string' && !Buffer.isBuffer(encoded)) {
      throw new TypeError(`encode must return a string or a Buffer for output ${id}`)
    }
    const headers = new Map<Buffer, Buffer>([[Buffer.from(format.idHeader), Buffer.from(id)]])
    const extra: Readonly<Record<string, string>> = output.headers ?? {}
    for (const [name, value] of Object.entries(extra)) {
      if (name === format.idHeader) throw new TypeError(`header "${name}" would overwrite the id of output ${id}`)
      headers.set(Buffer.from(name), Buffer.from(value))
    }
    const key = format.recordKey === undefined ? input.key : format.recordKey(output, input)
    return {
      topic,
      key: key === undefined || key === null ? undefined : toBuffer(key),
      value: Buffer.isBuffer(encoded) ? encoded : Buffer.from(encoded),
      headers,
    }
  })
}

const OWN_HEADERS: ReadonlySet<string> = new Set(Object.values(DEAD_LETTER_HEADERS))

/** `input` as it goes to the dead-letter topic: its key, value and headers, and why, from where, after how many attempts. */
export function deadLetterRecord(
  input: KafkaMessage,
  topic: string,
  reason: string,
  attempts: number,
): KafkaRecordToSend {
  // The input's own headers, less any of ours it carries (an input read back from a dead-letter
  // topic): a header map keyed by Buffers would keep both copies.
  const headers = bufferHeaders(
    [...input.headers].filter(([name]) => !OWN_HEADERS.has(toBuffer(name).toString('utf8'))) as [unknown, unknown][],
  )
  const add = (name: string, value: string): void => {
    headers.set(Buffer.from(name), Buffer.from(value))
  }
  add(DEAD_LETTER_HEADERS.reason, reason)
  add(DEAD_LETTER_HEADERS.topic, input.topic)
  add(DEAD_LETTER_HEADERS.partition, String(input.partition))
  add(DEAD_LETTER_HEADERS.offset, String(input.offset))
  add(DEAD_LETTER_HEADERS.key, coordinates(input))
  add(DEAD_LETTER_HEADERS.deliveryCount, String(attempts))
  return {
    topic,
    key: input.key === undefined || input.key === null ? undefined : toBuffer(input.key),
    value: input.value === undefined || input.value === null ? undefined : toBuffer(input.value),
    headers,
  }
}
