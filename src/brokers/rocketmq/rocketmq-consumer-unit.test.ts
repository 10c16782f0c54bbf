// consumeRocketMQ against doubles of the SimpleConsumer and the Producer: option checks, keys,
// the order of broker calls (ack only after the outcome is stored), retries as invisible
// durations, extends, dead letters, and receive failures.

import { describe, expect, it } from 'vitest'
import {
  FakeProducer,
  FakeSimpleConsumer,
  fakeView,
} from '../../../test/support/brokers/rocketmq/rocketmq-fakes.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeRocketMQ } from './rocketmq-consumer.js'
import { DeadLetterProperties } from './rocketmq-dead-letter.js'
import { messageKey } from './rocketmq-keys.js'

const until = async (what: string, probe: () => boolean, timeoutMs = 5000) => {
  const end = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function setup() {
  const client = new FakeSimpleConsumer()
  const producer = new FakeProducer()
  const idem = new Idempotency({ store: new MemoryStore() })
  const errors: unknown[] = []
  return {
    client,
    producer,
    idem,
    errors,
    base: {
      client,
      deadLetterTopic: 'orders-dead',
      deadLetterProducer: producer,
      idem,
      onError: (e: unknown) => errors.push(e),
    },
  }
}

describe('consumeRocketMQ options', () => {
  const { client, producer, idem } = setup()
  const handler = () => {}
  const valid = { client, deadLetterTopic: 'orders-dead', deadLetterProducer: producer, idem, handler }

  it('refuses an invisible duration the proxy would refuse', async () => {
    await expect(consumeRocketMQ({ ...valid, invisibleDuration: '5s' })).rejects.toThrow(/from 10s to 12h.*5000 ms/)
    await expect(consumeRocketMQ({ ...valid, invisibleDuration: '13h' })).rejects.toThrow(/from 10s to 12h/)
    await expect(consumeRocketMQ({ ...valid, invisibleDuration: 'soon' })).rejects.toThrow(/invisibleDuration/)
  })

  it('needs a client, a dead-letter topic and a producer for it', async () => {
    await expect(consumeRocketMQ({ ...valid, client: undefined as never })).rejects.toThrow(/needs client/)
    await expect(consumeRocketMQ({ ...valid, client: {} as never })).rejects.toThrow(/no receive\(\)/)
    await expect(consumeRocketMQ({ ...valid, deadLetterTopic: 'no spaces' })).rejects.toThrow(/deadLetterTopic/)
    await expect(consumeRocketMQ({ ...valid, deadLetterProducer: {} as never })).rejects.toThrow(/deadLetterProducer/)
  })

  it('refuses an unknown key source, an empty key property and a bad maxBatch', async () => {
    await expect(consumeRocketMQ({ ...valid, key: 'msgId' as never })).rejects.toThrow(/key must be/)
    await expect(consumeRocketMQ({ ...valid, keyProperty: '' })).rejects.toThrow(/keyProperty/)
    await expect(consumeRocketMQ({ ...valid, maxBatch: 0 })).rejects.toThrow(/maxBatch/)
    expect(client.receives).toEqual([])
  })
})

describe('RocketMQ keys', () => {
  const view = fakeView({ messageId: 'ID1', keys: ['', 'order-7'], properties: { 'idem-key': 'k-1', other: 'o' } })
  it('prefer the key property, then the first message key, then the message id', () => {
    expect(messageKey(view, 'propertyOrKeysOrMessageId', 'idem-key')).toBe('k-1')
    expect(messageKey(view, 'propertyOrKeysOrMessageId', 'missing')).toBe('order-7')
    expect(messageKey(fakeView({ messageId: 'ID2' }), 'propertyOrKeysOrMessageId', 'idem-key')).toBe('ID2')
    expect(messageKey(view, 'propertyOrMessageId', 'missing')).toBe('ID1')
    expect(messageKey(view, 'property', 'missing')).toBeUndefined()
    expect(messageKey(view, 'property', 'other')).toBe('o')
    expect(messageKey(view, 'messageId', 'idem-key')).toBe('ID1')
    expect(messageKey(view, (m) => m.tag, 'idem-key')).toBe('created')
  })
})

describe('consumeRocketMQ with a fake SimpleConsumer', () => {
  it('receives as many as the core has room for, and acks only after the outcome was stored', async () => {
    const { client, base } = setup()
    const seen: string[] = []
    const handle = await consumeRocketMQ({
      ...base,
      invisibleDuration: '12s',
      concurrency: 3,
      handler: async (_payload: unknown, ctx) => {
        seen.push(ctx.key)
        // The record is not complete yet: nothing may have been acknowledged.
        expect(client.log).toEqual([])
      },
    })
    const a = fakeView({ properties: { 'idem-key': 'a' }, deliveryAttempt: 2 })
    const b = fakeView({ keys: ['b'] })
    const settled: string[] = []
    handle.on('settled', (r) => settled.push(`${r.key}:${r.outcome}`))
    client.deliver(a, b)
    await until('both settled', () => settled.length === 2)
    expect(client.receives[0]).toEqual({ max: 3, invisibleMs: 12_000 })
    expect(seen.sort()).toEqual(['a', 'b'])
    expect(a.calls).toEqual(['ack'])
    expect(b.calls).toEqual(['ack'])
    // A redelivery (a lost ack) is replayed from the record: acked, the handler not run again.
    const again = fakeView({ messageId: a.messageId, properties: { 'idem-key': 'a' }, deliveryAttempt: 3 })
    client.deliver(again)
    await until('the duplicate settled', () => settled.length === 3)
    expect(settled[2]).toBe('a:replayed')
    expect(again.calls).toEqual(['ack'])
    expect(seen).toHaveLength(2)
    await handle.close()
    expect(handle.stats).toMatchObject({ rejected: 0, receiveFailures: 0 })
    expect(handle.stats.receives).toBeGreaterThanOrEqual(1)
  })

  it('hands a failed message back with its backoff as the invisible duration, and takes deliveryCount from deliveryAttempt', async () => {
    const { client, base } = setup()
    const counts: number[] = []
    const handle = await consumeRocketMQ({
      ...base,
      backoff: () => 1234,
      handler: (_payload: unknown, ctx) => {
        counts.push(ctx.delivery.deliveryCount)
        throw new Error('not yet')
      },
    })
    const first = fakeView({ messageId: 'R', deliveryAttempt: 1 })
    client.deliver(first)
    await until('the retry', () => first.calls.length > 0)
    expect(first.calls).toEqual(['invisible:1234'])
    // The broker's fifth delivery is the last under the default maxAttempts (5): dead-lettered.
    const last = fakeView({ messageId: 'R', deliveryAttempt: 5 })
    client.deliver(last)
    await until('the dead letter', () => last.calls.length > 0)
    expect(counts).toEqual([1, 5])
    expect(last.calls).toEqual(['ack'])
    await handle.close()
  })

  it('copies a dead letter with its reason and acks the original only after the copy was stored', async () => {
    const { client, producer, base, errors } = setup()
    const handle = await consumeRocketMQ({ ...base, handler: () => {} })
    producer.failing = new Error('dead-letter topic unreachable')
    const bad = fakeView({ body: 'not json', properties: { 'idem-key': 'p-1', trace: 't' }, keys: ['p-1'] })
    client.deliver(bad)
    await until('the failed copy reported', () => errors.length === 1)
    // No copy, no ack: the broker delivers it again after its invisible duration.
    expect(bad.calls).toEqual([])
    producer.failing = undefined
    const again = fakeView({
      body: 'not json',
      messageId: bad.messageId,
      properties: { 'idem-key': 'p-1' },
      deliveryAttempt: 2,
    })
    client.deliver(again)
    await until('the copy', () => again.calls.length === 1)
    expect(again.calls).toEqual(['ack'])
    const copy = producer.sent[0]
    expect(copy?.topic).toBe('orders-dead')
    expect(copy?.body.toString()).toBe('not json')
    expect(copy?.tag).toBe('created')
    expect(copy?.properties?.get(DeadLetterProperties.REASON)).toMatch(/payload could not be decoded/)
    expect(copy?.properties?.get(DeadLetterProperties.KEY)).toBe('p-1')
    expect(copy?.properties?.get(DeadLetterProperties.MESSAGE_ID)).toBe(bad.messageId)
    expect(copy?.properties?.get(DeadLetterProperties.DELIVERY_COUNT)).toBe('2')
    expect(copy?.properties?.get(DeadLetterProperties.TOPIC)).toBe('orders')
    await handle.close()
    expect(handle.stats.rejected).toBe(2)
  })

  it('dead-letters a message whose key is not usable under the message id, without running the handler', async () => {
    const { client, producer, base } = setup()
    let ran = 0
    const handle = await consumeRocketMQ({ ...base, key: 'property', handler: () => void ran++ })
    const none = fakeView({ messageId: 'NOKEY' })
    const bad = fakeView({ messageId: 'BADKEY', properties: { 'idem-key': 'caf\u00e9\nlatte' } })
    client.deliver(none, bad)
    await until('both dead-lettered', () => producer.sent.length === 2)
    const reasons = producer.sent.map((m) => m.properties?.get(DeadLetterProperties.REASON))
    expect(reasons[0]).toMatch(/no idempotency key \(property "idem-key"\)/)
    // Control characters of a reason do not reach the property.
    expect(reasons[1]).toMatch(/no usable idempotency key/)
    expect(reasons[1]).not.toMatch(/\n/)
    expect(producer.sent.map((m) => m.properties?.get(DeadLetterProperties.KEY))).toEqual(['NOKEY', 'BADKEY'])
    await handle.close()
    expect(ran).toBe(0)
  })

  it('extends a long handler every third of the invisible duration, and acks after the extend in flight', async () => {
    const { client, base } = setup()
    client.delayMs = 30
    let release: () => void = () => {}
    const handle = await consumeRocketMQ({
      ...base,
      invisibleDuration: '10s',
      handler: () => new Promise<void>((resolve) => (release = resolve)),
    })
    const view = fakeView({ messageId: 'SLOW' })
    client.deliver(view)
    // 10 s / 3: the first extend comes after ~3.3 s.
    await until('an extend', () => view.calls.length > 0, 6000)
    expect(view.calls).toEqual(['invisible:10000'])
    release()
    await until('the ack', () => view.calls.includes('ack'))
    // Never an ack before an extend still on its way: it would carry the receipt handle the extend retires.
    expect(view.calls.at(-1)).toBe('ack')
    await handle.close()
  }, 10_000)

  it('reports a failed receive, backs off and receives again', async () => {
    const { client, base, errors } = setup()
    const keys: string[] = []
    const handle = await consumeRocketMQ({ ...base, handler: (_p: unknown, ctx) => void keys.push(ctx.key) })
    client.fail(new Error('no route'))
    client.deliver(fakeView({ properties: { 'idem-key': 'after' } }))
    await until('the message after the failure', () => keys.length === 1)
    expect(errors.map((e) => (e as Error).message)).toEqual(['no route'])
    expect(handle.stats.receiveFailures).toBe(1)
    await handle.close()
  })

  it('stops on close without waiting for a long poll, and hands back what it still returns', async () => {
    const { client, base } = setup()
    let ran = 0
    const handle = await consumeRocketMQ({ ...base, handler: () => void ran++ })
    await until('a receive', () => client.receives.length === 1)
    await handle.close()
    await handle.done
    const late = fakeView({ messageId: 'LATE' })
    client.deliver(late)
    await until('the hand-back', () => late.calls.length === 1)
    expect(late.calls).toEqual(['invisible:0'])
    expect(ran).toBe(0)
  })
})
