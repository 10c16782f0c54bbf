import { describe, expect, it } from 'vitest'
import type { AmqpMessage } from './amqp-driver.js'
import { deliveryCountOf, IdemHeader, keyOf } from './amqp-message.js'
import { delayQueueFor, delayQueues } from './amqp-topology.js'

function message(properties: AmqpMessage['properties'], redelivered = false): AmqpMessage {
  return {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered, exchange: '', routingKey: 'q' },
    properties,
  }
}

describe('keyOf', () => {
  it('reads properties.messageId by default', () => {
    expect(keyOf(message({ messageId: 'm-1' }))).toBe('m-1')
    expect(keyOf(message({}))).toBeUndefined()
  })

  it('reads a configured header, string or bytes', () => {
    expect(keyOf(message({ messageId: 'x', headers: { 'order-id': 'o-7' } }), { header: 'order-id' })).toBe('o-7')
    expect(keyOf(message({ headers: { 'order-id': Buffer.from('o-8') } }), { header: 'order-id' })).toBe('o-8')
    expect(keyOf(message({ messageId: 'x', headers: {} }), { header: 'order-id' })).toBeUndefined()
  })

  it('takes a function for keys in the body or elsewhere', () => {
    expect(keyOf(message({}), (m) => `rk:${m.fields.routingKey}`)).toBe('rk:q')
  })
})

describe('deliveryCountOf', () => {
  it('counts exactly on quorum queues from x-delivery-count (absent on the first delivery)', () => {
    expect(deliveryCountOf(message({ headers: {} }))).toBe(1)
    expect(deliveryCountOf(message({ headers: { 'x-delivery-count': 1 } }, true))).toBe(2)
    expect(deliveryCountOf(message({ headers: { 'x-delivery-count': 4 } }, true))).toBe(5)
  })

  it('is best effort on classic queues: 1, or 2 for any redelivery', () => {
    expect(deliveryCountOf(message({}))).toBe(1)
    expect(deliveryCountOf(message({}, true))).toBe(2)
  })

  it('adds the deliveries carried by a delayed copy', () => {
    expect(deliveryCountOf(message({ headers: { [IdemHeader.DELIVERIES]: 3 } }))).toBe(4)
    expect(deliveryCountOf(message({ headers: { [IdemHeader.DELIVERIES]: 3, 'x-delivery-count': 1 } }, true))).toBe(5)
    expect(deliveryCountOf(message({ headers: { [IdemHeader.DELIVERIES]: 'junk' } }))).toBe(1)
  })
})

describe('delay tiers', () => {
  const tiers = delayQueues('jobs', [8000, 1000, 2000])

  it('names one queue per tier, sorted', () => {
    expect(tiers.map((t) => t.queue)).toEqual(['jobs.idem.delay.1000', 'jobs.idem.delay.2000', 'jobs.idem.delay.8000'])
  })

  it('waits in the smallest tier at least as long as asked, and the largest past it', () => {
    expect(delayQueueFor(tiers, 1).ms).toBe(1000)
    expect(delayQueueFor(tiers, 1000).ms).toBe(1000)
    expect(delayQueueFor(tiers, 1001).ms).toBe(2000)
    expect(delayQueueFor(tiers, 60_000).ms).toBe(8000)
  })

  it('refuses empty or fractional tiers', () => {
    expect(() => delayQueues('jobs', [])).toThrow(RangeError)
    expect(() => delayQueues('jobs', [0.5])).toThrow(RangeError)
  })
})
