// Fuzzing how the Kafka consumer prepares a record for the core (KafkaWorker.prepare, which each
// partition calls before it hands a record on): any headers, record key and value give a key and a
// payload, or a reason to dead-letter the record; nothing throws out of it.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  expectRefusal,
  headerValue,
  keyText,
  payloadBytes,
  thrownValue,
} from '../../../test/support/fuzz/broker.test-helper.js'
import type { IdempotentConsumer } from '../../consumer/consumer.js'
import { validateKey } from '../../core/key.js'
import type { KafkaDeadLetters } from './kafka-dead-letter.js'
import type { KafkaConsumerClient, KafkaMessage } from './kafka-driver.js'
import { MESSAGE_ID_HEADER } from './kafka-headers.js'
import { type KafkaOptions, resolveKafkaOptions } from './kafka-options.js'
import { KafkaWorker } from './kafka-worker.js'

/** A worker over doubles: only `prepare` is called, which touches neither the client nor the core. */
function worker(options: Partial<KafkaOptions<unknown>> = {}): KafkaWorker<unknown, unknown> {
  const core = { on: () => () => {} } as unknown as IdempotentConsumer<unknown, unknown>
  const client = { on: () => {}, off: () => {} } as unknown as KafkaConsumerClient
  const resolved = resolveKafkaOptions({ topics: ['orders'], onError: () => {}, ...options } as KafkaOptions<unknown>)
  return new KafkaWorker(core, client, {} as KafkaDeadLetters, resolved, {
    rejected: 0,
    commits: 0,
    revoked: 0,
    restarts: 0,
  })
}

const text = fc.oneof(
  keyText,
  keyText.map((s) => Buffer.from(s)),
)
const record: fc.Arbitrary<KafkaMessage> = fc.record({
  topic: fc.string({ maxLength: 8 }),
  partition: fc.nat({ max: 64 }),
  offset: fc.bigInt({ min: 0n, max: 2n ** 62n }),
  key: fc.oneof(text, headerValue),
  value: fc.oneof(
    payloadBytes,
    payloadBytes.map((bytes) => bytes.toString('latin1')),
    headerValue,
  ),
  headers: fc
    .array(
      fc.tuple(
        fc.oneof(text, fc.constant(MESSAGE_ID_HEADER), fc.constant(Buffer.from(MESSAGE_ID_HEADER))),
        fc.oneof(text, headerValue),
      ),
      {
        maxLength: 4,
      },
    )
    .map((pairs) => new Map<unknown, unknown>(pairs)),
  timestamp: fc.constant(0n),
})

describe('KafkaWorker.prepare, fuzzed', () => {
  it('gives any record a valid key and a payload, or a reason to dead-letter it', () => {
    const workers = [worker(), worker({ recordKeyIsUnique: true })]
    fc.assert(
      fc.property(record, fc.constantFrom(0, 1), (message, which) => {
        const prepared = (workers[which] as KafkaWorker<unknown, unknown>).prepare(message)
        if ('reject' in prepared) expectRefusal(prepared.reject)
        else expect(validateKey(prepared.key)).toBe(prepared.key)
      }),
      { numRuns: 1500 },
    )
  })

  it('gives a reason, rather than throws, when a key function or a decoder throws anything', () => {
    fc.assert(
      fc.property(record, thrownValue, (message, thrown) => {
        const throwing = () => {
          throw thrown
        }
        for (const prepared of [
          worker({ key: throwing }).prepare(message),
          worker({ decode: throwing }).prepare(message),
        ]) {
          expect('reject' in prepared).toBe(true)
          if ('reject' in prepared) expectRefusal(prepared.reject)
        }
      }),
      { numRuns: 300 },
    )
  })

  // Found by the property above: describing a thrown Object.create(null) threw out of prepare().
  it('rejects a record whose key function throws an object without toString', () => {
    const message = { topic: 't', partition: 0, offset: 0n, key: null, value: '{}', headers: new Map(), timestamp: 0n }
    const prepared = worker({
      key: () => {
        throw Object.create(null)
      },
    }).prepare(message)
    expect(prepared).toEqual({ reject: 'no usable key: [object Object]' })
  })
})
