// consumePulsar and pulsarProducer over a socket double: permits follow the core's free capacity,
// a closed consumer socket is replaced, acks never outlive the socket their message came on, and
// a producer send resolves only on the broker's `ok`.

import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../../test/support/brokers/pulsar/pulsar.test-helper.js'
import { type FakeSocket, fakeOpener, message } from '../../../test/support/brokers/pulsar/pulsar-fakes.test-helper.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumePulsar } from './pulsar-consumer.js'
import { KEY_PROPERTY } from './pulsar-keys.js'
import { pulsarProducer } from './pulsar-producer.js'

function consumer(handler: (payload: unknown, key: string) => unknown, concurrency = 2) {
  const fake = fakeOpener()
  const results: DeliveryResult[] = []
  const errors: { operation: string }[] = []
  const handle = consumePulsar({
    url: 'ws://127.0.0.1:8080',
    topic: 'orders',
    subscription: 'billing',
    deadLetterTopic: 'orders-dead',
    openSocket: fake.open,
    idem: new Idempotency({ store: new MemoryStore() }),
    handler: (payload, ctx) => handler(payload, ctx.key),
    concurrency,
    backoff: () => 10,
    on: { settled: (r) => results.push(r), broker_error: (e) => errors.push(e) },
  })
  return { fake, results, errors, handle }
}

const consumerSockets = (sockets: FakeSocket[]) => sockets.filter((s) => s.url.includes('/consumer/'))

describe('consumePulsar over a socket double', () => {
  it('grants permits only as handlers finish', async () => {
    const gates = new Map<string, () => void>()
    const { fake, results, handle } = consumer(
      (_payload, key) =>
        new Promise<void>((resolve) => {
          gates.set(key, resolve)
        }),
    )
    const h = await handle
    const socket = fake.sockets[0] as FakeSocket
    await waitFor('the first permits', () => socket.permits() === 2)
    socket.receive(message('m1', { n: 1 }, { [KEY_PROPERTY]: 'a' }))
    socket.receive(message('m2', { n: 2 }, { [KEY_PROPERTY]: 'b' }))
    await waitFor('two handlers', () => gates.size === 2)
    await sleep(20)
    expect(socket.permits()).toBe(2)
    gates.get('a')?.()
    await waitFor('one settled', () => results.length === 1)
    await waitFor('one more permit', () => socket.permits() === 3)
    expect(socket.acks()).toEqual(['m1'])
    gates.get('b')?.()
    await waitFor('two settled', () => results.length === 2)
    expect(socket.acks()).toEqual(['m1', 'm2'])
    await h.close()
  })

  it('opens a new socket when the broker closes one; a late ack fails and the redelivery replays', async () => {
    let release!: () => void
    let runs = 0
    const { fake, results, errors, handle } = consumer(async () => {
      runs++
      if (runs === 1) {
        await new Promise<void>((resolve) => {
          release = resolve
        })
      }
    })
    const h = await handle
    const first = fake.sockets[0] as FakeSocket
    await waitFor('permits', () => first.permits() === 2)
    first.receive(message('m1', { n: 1 }, { [KEY_PROPERTY]: 'k1' }))
    await waitFor('the handler to start', () => runs === 1)
    first.drop()
    await waitFor('a second socket', () => consumerSockets(fake.sockets).length === 2)
    const second = consumerSockets(fake.sockets)[1] as FakeSocket
    await waitFor('fresh permits', () => second.permits() === 1)
    // A message on the old socket after it closed is nobody's: the broker redelivers it.
    first.receive(message('m9', { n: 9 }, { [KEY_PROPERTY]: 'k9' }))
    release()
    await waitFor('the ack to fail', () => errors.length === 1)
    expect(errors[0]?.operation).toBe('ack')
    expect(first.acks()).toEqual([])
    second.receive(message('m1', { n: 1 }, { [KEY_PROPERTY]: 'k1' }, 0))
    await waitFor('the redelivery', () => results.length === 2)
    expect(results.map((r) => r.outcome)).toEqual(['executed', 'replayed'])
    expect(second.acks()).toEqual(['m1'])
    expect(runs).toBe(1)
    expect(h.stats.reconnects).toBe(1)
    await h.close()
  })

  it('keeps trying to reconnect while the broker refuses, and stops on close()', async () => {
    const { fake, handle } = consumer(() => {})
    const h = await handle
    fake.refuse = new Error('connection refused')
    ;(fake.sockets[0] as FakeSocket).drop()
    await sleep(400)
    fake.refuse = undefined
    await waitFor('a socket again', () => consumerSockets(fake.sockets).length === 2)
    await h.close()
    await h.done
    const count = fake.sockets.length
    await sleep(300)
    expect(fake.sockets).toHaveLength(count)
    expect(consumerSockets(fake.sockets).every((s) => !s.open)).toBe(true)
  })

  it('acks a dead-lettered message only after the copy was confirmed', async () => {
    const { fake, results, handle } = consumer(() => {
      throw Object.assign(new Error('final'), {})
    })
    const h = await handle
    const socket = fake.sockets[0] as FakeSocket
    await waitFor('permits', () => socket.permits() === 2)
    socket.receive(message('m1', { n: 1 }, { [KEY_PROPERTY]: 'k1' }, 4))
    await waitFor('a producer socket', () => fake.sockets.length === 2)
    const producer = fake.sockets[1] as FakeSocket
    await waitFor('the copy', () => producer.sent.length === 1)
    const copy = producer.sent[0] as { context: string; properties: Record<string, string> }
    expect(copy.properties['idem-dead-letter-reason']).toContain('final')
    expect(copy.properties['idem-delivery-count']).toBe('5')
    await sleep(20)
    expect(socket.acks()).toEqual([])
    producer.receive({ result: 'ok', messageId: 'CAEQAA==', context: copy.context })
    await waitFor('settled', () => results.length === 1)
    expect(results[0]?.outcome).toBe('dead_lettered')
    expect(socket.acks()).toEqual(['m1'])
    await h.close()
  })

  it('leaves the original unacknowledged when the copy is refused', async () => {
    const { fake, errors, handle } = consumer(() => {})
    const h = await handle
    const socket = fake.sockets[0] as FakeSocket
    await waitFor('permits', () => socket.permits() === 2)
    socket.receive({ messageId: 'm1', payload: Buffer.from('not json').toString('base64') })
    await waitFor('a producer socket', () => fake.sockets.length === 2)
    const producer = fake.sockets[1] as FakeSocket
    await waitFor('the copy', () => producer.sent.length === 1)
    producer.receive({
      result: 'send-error:3',
      errorMsg: 'quota',
      context: (producer.sent[0] as { context: string }).context,
    })
    await sleep(20)
    expect(socket.acks()).toEqual([])
    expect(h.stats.rejected).toBe(1)
    expect(errors).toEqual([])
    // The permit the rejected message used is given again.
    await waitFor('a new permit', () => socket.permits() === 3)
    await h.close()
  })
})

describe('pulsarProducer over a socket double', () => {
  it('resolves on ok, rejects a refusal, a timeout and a closed socket, and reuses one socket', async () => {
    const fake = fakeOpener()
    const producer = pulsarProducer({ url: 'ws://h:1', topic: 'orders', confirmTimeout: 100, openSocket: fake.open })
    const ok = producer.send({ id: 'a', payload: { n: 1 }, headers: { [KEY_PROPERTY]: 'spoofed', x: 'y' } })
    await waitFor('the frame', () => fake.sockets[0]?.sent.length === 1)
    const socket = fake.sockets[0] as FakeSocket
    const frame = socket.sent[0] as { context: string; properties: Record<string, string>; payload: string }
    expect(frame.properties).toEqual({ x: 'y', [KEY_PROPERTY]: 'a' })
    expect(JSON.parse(Buffer.from(frame.payload, 'base64').toString())).toEqual({ n: 1 })
    socket.receive({ result: 'ok', messageId: 'CAEQAA==', context: frame.context })
    await expect(ok).resolves.toEqual({ id: 'a', topic: 'persistent://public/default/orders', messageId: 'CAEQAA==' })

    const refused = producer.send({ id: 'b', payload: 1 })
    await waitFor('the frame', () => socket.sent.length === 2)
    socket.receive({
      result: 'send-error:1',
      errorMsg: 'topic terminated',
      context: (socket.sent[1] as { context: string }).context,
    })
    await expect(refused).rejects.toMatchObject({
      name: 'PublishNotConfirmedError',
      messageId: 'b',
      message: expect.stringContaining('topic terminated'),
    })

    await expect(producer.send({ id: 'c', payload: 1 })).rejects.toThrow('Pulsar did not confirm "c" within 100 ms')

    const cut = producer.send({ id: 'd', payload: 1 })
    await waitFor('the frame', () => socket.sent.length === 4)
    socket.drop()
    await expect(cut).rejects.toBeInstanceOf(PublishNotConfirmedError)
    expect(fake.sockets).toHaveLength(1)
    // The next send opens a new socket.
    const again = producer.send({ id: 'e', payload: 1 })
    await waitFor('a second socket', () => fake.sockets[1]?.sent.length === 1)
    const second = fake.sockets[1] as FakeSocket
    second.receive({ result: 'ok', messageId: 'CAIQAA==', context: (second.sent[0] as { context: string }).context })
    await expect(again).resolves.toMatchObject({ id: 'e' })
    await producer.close()
    expect(second.open).toBe(false)
  })
})
