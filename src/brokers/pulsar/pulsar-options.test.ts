// consumePulsar's and pulsarProducer's options are checked before any socket opens, and become the
// query parameters the WebSocket API reads.

import { describe, expect, it } from 'vitest'
import { fakeOpener } from '../../../test/support/brokers/pulsar/pulsar-fakes.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { type ConsumePulsarOptions, consumePulsar } from './pulsar-consumer.js'
import { pulsarProducer } from './pulsar-producer.js'
import { parseTopic } from './pulsar-topic.js'

const base = {
  url: 'ws://127.0.0.1:8080',
  topic: 'orders',
  subscription: 'billing',
  deadLetterTopic: 'orders-dead',
  idem: new Idempotency({ store: new MemoryStore() }),
  handler: () => {},
}

async function refused(options: Partial<ConsumePulsarOptions> & Record<string, unknown>): Promise<unknown> {
  const fake = fakeOpener()
  const attempt = consumePulsar({ ...base, ...options, openSocket: fake.open } as ConsumePulsarOptions)
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(fake.sockets).toHaveLength(0)
  return error
}

describe('consumePulsar options', () => {
  it('refuses bad options with a message saying what to give, before opening anything', async () => {
    expect(await refused({ url: 'http://127.0.0.1:8080' })).toMatchObject({
      message: expect.stringContaining("needs url: the Pulsar web service's WebSocket address"),
    })
    expect(await refused({ topic: 'non-persistent://public/default/t' })).toMatchObject({
      message: expect.stringContaining('is non-persistent'),
    })
    expect(await refused({ topic: 'a/b' })).toMatchObject({
      message: expect.stringContaining("must be 'persistent://tenant/namespace/topic'"),
    })
    expect(await refused({ subscription: '' })).toMatchObject({
      message: expect.stringContaining('needs subscription'),
    })
    expect(await refused({ subscriptionType: 'Exclusive' as 'Shared' })).toMatchObject({
      message: "consumePulsar: subscriptionType must be 'Shared' or 'Key_Shared', got Exclusive",
    })
    expect(await refused({ deadLetterTopic: undefined as unknown as false })).toMatchObject({
      message: expect.stringContaining('needs deadLetterTopic'),
    })
    expect(await refused({ deadLetterTopic: 'persistent://public/default/orders' })).toMatchObject({
      message: 'consumePulsar: deadLetterTopic must not be the consumed topic',
    })
    expect(await refused({ maxRedeliverCount: 3, maxAttempts: 5 })).toMatchObject({
      message: 'consumePulsar: maxRedeliverCount (3) must be at least maxAttempts (5)',
    })
    expect(await refused({ retryDelay: 'soon' })).toBeInstanceOf(RangeError)
    expect(await refused({ maxBatch: 0 })).toMatchObject({ message: 'maxBatch must be a positive integer, got 0' })
    expect(await refused({ idem: undefined })).toMatchObject({ message: expect.stringContaining('needs idem') })
  })

  it('subscribes in pull mode with the query parameters the options give', async () => {
    const fake = fakeOpener()
    const handle = await consumePulsar({
      ...base,
      topic: 'acme/eu/orders',
      subscription: 'billing team',
      subscriptionType: 'Key_Shared',
      retryDelay: '250ms',
      maxRedeliverCount: 10,
      concurrency: 3,
      openSocket: fake.open,
    })
    const url = new URL(fake.sockets[0]?.url ?? '')
    expect(url.pathname).toBe('/ws/v2/consumer/persistent/acme/eu/orders/billing%20team')
    expect(Object.fromEntries(url.searchParams)).toEqual({
      subscriptionType: 'Key_Shared',
      subscriptionInitialPosition: 'Earliest',
      pullMode: 'true',
      receiverQueueSize: '3',
      negativeAckRedeliveryDelay: '250',
      ackTimeoutMillis: '0',
      maxRedeliverCount: '10',
      deadLetterTopic: 'persistent://public/default/orders-dead',
    })
    await handle.close()
    expect(fake.sockets[0]?.open).toBe(false)
  })
})

describe('topic names', () => {
  it('reads the full, the tenant/namespace and the short form', () => {
    expect(parseTopic('persistent://t/n/x').full).toBe('persistent://t/n/x')
    expect(parseTopic('t/n/x').full).toBe('persistent://t/n/x')
    expect(parseTopic('x').full).toBe('persistent://public/default/x')
    expect(() => parseTopic('kafka://x')).toThrow('is not a Pulsar topic name')
    expect(() => parseTopic('t/n/x/y')).toThrow("must be 'persistent://tenant/namespace/topic'")
  })
})

describe('pulsarProducer options', () => {
  it('refuses a bad url or topic at once, and a message with nowhere to go when sent', async () => {
    expect(() => pulsarProducer({ url: 'localhost:8080' })).toThrow(
      "needs url: the Pulsar web service's WebSocket address",
    )
    expect(() => pulsarProducer({ url: 'ws://h:1', topic: 'non-persistent://a/b/c' })).toThrow('is non-persistent')
    expect(() => pulsarProducer({ url: 'ws://h:1', confirmTimeout: 0 })).toThrow(RangeError)
    const fake = fakeOpener()
    const producer = pulsarProducer({ url: 'ws://h:1', openSocket: fake.open })
    await expect(producer.send({ id: 'a', payload: 1 })).rejects.toThrow(
      'message "a" has no destination and the producer no default topic',
    )
    await expect(producer.send({ id: 'bad key \u0001', payload: 1, destination: 't' })).rejects.toThrow()
    expect(fake.sockets).toHaveLength(0)
  })
})
