// How jetStreamProducer is built (one options object, the client's ownership, Durations), on a
// fake JetStream client: the PubAck path itself runs against NATS in jetstream.test.ts.

import { describe, expect, it, vi } from 'vitest'
import { jetStreamProducer } from './jetstream-producer.js'
import type { JetStreamClientLike, JetStreamPublishOptionsLike, NatsConnectionLike } from './nats-driver.js'

/** A JetStream client that acknowledges every publish, and fails the first `failures` with a timeout. */
function fakeJetStream(failures = 0) {
  const calls: { subject: string; options: JetStreamPublishOptionsLike | undefined }[] = []
  const js = {
    calls,
    async publish(subject: string, _data: Uint8Array, options?: JetStreamPublishOptionsLike) {
      calls.push({ subject, options })
      if (calls.length <= failures) throw Object.assign(new Error('timeout'), { code: 'TIMEOUT' })
      return { stream: 'S', seq: calls.length, duplicate: false }
    },
    consumers: { get: async () => ({}) as never },
    streams: { get: async () => ({}) as never },
  }
  return js as typeof js & JetStreamClientLike
}

function fakeConnection(js = fakeJetStream()) {
  const nc = {
    js,
    closed: 0,
    jetstream: () => js,
    flush: async () => {},
    isClosed: () => false,
    async close() {
      nc.closed++
    },
  }
  return nc satisfies NatsConnectionLike
}

describe('jetStreamProducer construction', () => {
  it('takes a JetStream client or a connection as { client }, with Durations for its waits', async () => {
    const js = fakeJetStream(1)
    const producer = jetStreamProducer({ client: js, subject: 'orders', confirmTimeout: '2s', retryDelay: '1ms' })
    expect(await producer.send({ id: 'j-1', payload: 1 })).toEqual({ id: 'j-1', stream: 'S', seq: 2, duplicate: false })
    expect(js.calls.map((c) => [c.subject, c.options?.msgID, c.options?.timeout])).toEqual([
      ['orders', 'j-1', 2000],
      ['orders', 'j-1', 2000],
    ])
    const nc = fakeConnection()
    const onConnection = jetStreamProducer({ client: nc, subject: 'orders' })
    await onConnection.publish({ id: 'j-2', payload: 1 })
    await onConnection.close()
    expect([nc.js.calls.length, nc.closed]).toEqual([1, 0])
  })

  it('calls a factory on the first publish and closes the connection it made in close()', async () => {
    const nc = fakeConnection()
    const factory = vi.fn(async () => nc)
    const producer = jetStreamProducer({ client: factory, subject: 'orders' })
    expect(factory).not.toHaveBeenCalled()
    await producer.publish({ id: 'f-1', payload: 1 })
    await producer.publish({ id: 'f-2', payload: 1 })
    await producer.close()
    expect([factory.mock.calls.length, nc.js.calls.length, nc.closed]).toEqual([1, 2, 1])
  })

  it('keeps the old (js, options) form and the ms options, with one deprecation warning each', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const js = fakeJetStream(1)
      const producer = jetStreamProducer(js, { subject: 'old', timeoutMs: 1500, retryDelayMs: 1 })
      await producer.publish({ id: 'o-1', payload: 1 })
      jetStreamProducer(js, { subject: 'old', timeoutMs: 1500 })
      expect(js.calls.map((c) => c.options?.timeout)).toEqual([1500, 1500])
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        expect.stringMatching(/^jetStreamProducer\(js, options\) is deprecated: use jetStreamProducer\(\{ client/),
        expect.stringMatching(/timeoutMs.*confirmTimeout/),
        expect.stringMatching(/retryDelayMs.*retryDelay/),
      ])
    } finally {
      warn.mockRestore()
    }
  })

  it('refuses a missing client and a count that is not a positive integer, naming the option', () => {
    expect(() => jetStreamProducer({} as never)).toThrow(/jetStreamProducer needs \{ client \}/)
    expect(() => jetStreamProducer({ client: {} as never })).toThrow(/client must be a NATS connection/)
    expect(() => jetStreamProducer({ client: fakeJetStream(), attempts: 0 })).toThrow(
      'attempts must be a positive integer, got 0',
    )
    expect(() => jetStreamProducer({ client: fakeJetStream(), retryDelay: 'later' })).toThrow(/retryDelay/)
  })
})
