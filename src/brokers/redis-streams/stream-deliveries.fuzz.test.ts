// Fuzzing how the Redis Streams consumer turns entries into deliveries (StreamDeliveries.from, the
// step between XREADGROUP/XAUTOCLAIM and the core): any fields give a delivery the core can take,
// or a dead letter with the reason; nothing throws out of it.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  expectRefusal,
  expectTakeable,
  keyText,
  payloadBytes,
  thrownValue,
} from '../../../test/support/fuzz/broker.test-helper.js'
import { type RedisStreamOptions, resolveStreamOptions } from './redis-stream-options.js'
import { StreamDeliveries } from './stream-deliveries.js'
import type { DeadLetterInfo, StreamEntry, StreamGroup } from './stream-group.js'

/** A group double that records dead letters and acks: nothing else is called by `from`. */
function deliveriesOver(options: Partial<RedisStreamOptions<unknown>> = {}) {
  const deadLettered: Array<{ id: string; info: DeadLetterInfo }> = []
  const group = {
    ack: async () => {},
    touch: async () => {},
    deadLetter: async (entry: StreamEntry, _stream: string, info: DeadLetterInfo) => {
      deadLettered.push({ id: entry.id, info })
    },
  } as unknown as StreamGroup
  const resolved = resolveStreamOptions({
    stream: 'orders',
    group: 'g',
    onError: () => {},
    ...options,
  } as RedisStreamOptions<unknown>)
  return { deliveries: new StreamDeliveries(group, resolved, () => {}), deadLettered }
}

const fieldName = fc.oneof(fc.constantFrom('id', 'payload', '__proto__', 'constructor'), fc.string({ maxLength: 6 }))
const fieldValue = fc.oneof(
  keyText,
  payloadBytes.map((bytes) => bytes.toString('utf8')),
)
let sequence = 0
const entry: fc.Arbitrary<StreamEntry> = fc
  .record({
    fields: fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 5 }),
    deliveryCount: fc.integer({ min: 1, max: 50 }),
  })
  .map(({ fields, deliveryCount }) => {
    // Fields as the group reads them from the flat reply: the last value of a repeated name wins.
    const record: Record<string, string> = {}
    for (const [name, value] of fields) record[name] = value
    return { stream: 'orders', id: `1700000000000-${sequence++}`, fields: record, deliveryCount }
  })

describe('StreamDeliveries.from, fuzzed', () => {
  it('hands the core a takeable delivery or dead-letters the entry with the reason, for any entries', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), (entries) => {
        const { deliveries, deadLettered } = deliveriesOver()
        const handed = deliveries.from(entries)
        for (const delivery of handed) expectTakeable(delivery)
        for (const { info } of deadLettered) expectRefusal(info.reason)
        expect(handed.length + deadLettered.length).toBe(entries.length)
      }),
      { numRuns: 800 },
    )
  })

  it('dead-letters, rather than throws, when a key function or a decoder throws anything', () => {
    fc.assert(
      fc.property(entry, thrownValue, (one, thrown) => {
        const throwing = () => {
          throw thrown
        }
        for (const options of [{ key: throwing }, { decode: throwing }]) {
          const { deliveries, deadLettered } = deliveriesOver(options)
          expect(deliveries.from([one])).toEqual([])
          expect(deadLettered).toHaveLength(1)
          expectRefusal(deadLettered[0]?.info.reason)
        }
      }),
      { numRuns: 300 },
    )
  })

  // Found by the property above: describing a thrown Object.create(null) threw out of from().
  it('dead-letters an entry whose decoder throws an object without toString', () => {
    const { deliveries, deadLettered } = deliveriesOver({
      decode: () => {
        throw Object.create(null)
      },
    })
    expect(deliveries.from([{ stream: 'orders', id: '1-1', fields: { id: 'k' }, deliveryCount: 1 }])).toEqual([])
    expect(deadLettered.map(({ info }) => info.reason)).toEqual(['cannot decode the payload: [object Object]'])
  })
})
