import { describe, expect, it } from 'vitest'
import { fakeJetStream, fakeMsg } from '../../../test/support/brokers/nats/jetstream-fakes.test-helper.js'
import { decodeJson } from '../../consumer/decode-json.js'
import { checkConsumer } from './jetstream-consumer.js'
import { DeadLetterHeaders, deadLetterer } from './jetstream-dead-letter.js'
import { type DeliverySettings, type Translation, toDelivery } from './jetstream-delivery.js'
import { messageKey, sequenceKey } from './jetstream-keys.js'

const EPOCH = Date.UTC(2026, 0, 1)

function settings(overrides: Partial<DeliverySettings<unknown>> = {}): DeliverySettings<unknown> {
  return {
    key: 'msgIdOrSequence',
    streamEpoch: EPOCH,
    decode: decodeJson,
    extendEveryMs: 10_000,
    doubleAck: false,
    deadLetter: async () => {},
    ...overrides,
  }
}

function delivered(t: Translation<unknown>) {
  if (!t.ok) throw new Error(`expected a delivery, got poison: ${t.reason}`)
  return t.delivery
}

describe('JetStream message keys', () => {
  it('prefers the Nats-Msg-Id header and falls back to the stream sequence', () => {
    expect(messageKey(fakeMsg({ headers: { 'Nats-Msg-Id': 'order-7' } }), 'msgIdOrSequence', EPOCH)).toBe('order-7')
    expect(messageKey(fakeMsg({ seq: 9 }), 'msgIdOrSequence', EPOCH)).toBe(`nats:ORDERS:${EPOCH}:9`)
  })

  it('keys by sequence alone when asked, even when a message id is set', () => {
    expect(messageKey(fakeMsg({ headers: { 'Nats-Msg-Id': 'order-7' }, seq: 3 }), 'sequence', EPOCH)).toBe(
      `nats:ORDERS:${EPOCH}:3`,
    )
  })

  it('gives the same sequence of a re-created stream another key', () => {
    const info = fakeMsg({ seq: 1 }).info
    expect(sequenceKey(info, EPOCH)).not.toBe(sequenceKey(info, EPOCH + 1))
  })

  it('has no key for a message without Nats-Msg-Id when only message ids are accepted', () => {
    expect(messageKey(fakeMsg(), 'msgId', EPOCH)).toBeUndefined()
  })
})

describe('a JetStream message as a Delivery', () => {
  it('carries the key, the decoded payload and JetStream’s delivery count', () => {
    const msg = fakeMsg({ data: '{"amount":12}', headers: { 'Nats-Msg-Id': 'pay-1' }, deliveryCount: 3 })
    const d = delivered(toDelivery(msg, settings()))
    expect(d).toMatchObject({ key: 'pay-1', payload: { amount: 12 }, deliveryCount: 3, orderingKey: 'pay-1', raw: msg })
    expect(d.extendEveryMs).toBe(10_000)
  })

  it('acks, naks with the delay, naks at once for a zero delay, and reports work in progress', async () => {
    const msgs = [fakeMsg(), fakeMsg(), fakeMsg(), fakeMsg()]
    const [a, b, c, w] = msgs.map((m) => delivered(toDelivery(m, settings())))
    await a?.ack()
    await b?.retry(1500)
    await c?.retry(0)
    await w?.extend?.()
    expect(msgs.map((m) => m.calls)).toEqual([['ack'], ['nak:1500'], ['nak'], ['working']])
  })

  it('waits for the server’s confirmation of an ack when double acks are on, and fails an unconfirmed one', async () => {
    const confirmed = fakeMsg()
    await delivered(toDelivery(confirmed, settings({ doubleAck: {} }))).ack()
    expect(confirmed.calls).toEqual(['ackAck'])
    const unconfirmed = fakeMsg({ ackAck: false })
    await expect(delivered(toDelivery(unconfirmed, settings({ doubleAck: {} }))).ack()).rejects.toThrow(
      /did not confirm/,
    )
  })

  it('turns a driver that throws (closed connection) into a rejected promise', async () => {
    const msg = fakeMsg()
    msg.ack = () => {
      throw new Error('CONNECTION_CLOSED')
    }
    await expect(delivered(toDelivery(msg, settings())).ack()).rejects.toThrow('CONNECTION_CLOSED')
  })

  it('hands an undecodable payload back as poison with the reason, under its key', () => {
    const t = toDelivery(fakeMsg({ data: 'not json', headers: { 'Nats-Msg-Id': 'm-1' } }), settings())
    expect(t).toMatchObject({ ok: false, copyId: 'm-1', reason: expect.stringMatching(/could not be decoded/) })
  })

  it('hands a message without a usable key back as poison', () => {
    const missing = toDelivery(fakeMsg({ seq: 5 }), settings({ key: 'msgId' }))
    expect(missing).toMatchObject({
      ok: false,
      copyId: `nats:ORDERS:${EPOCH}:5`,
      reason: expect.stringMatching(/no idempotency key/),
    })
    const tooLong = toDelivery(fakeMsg({ headers: { 'Nats-Msg-Id': 'x'.repeat(300) } }), settings())
    expect(tooLong).toMatchObject({ ok: false, reason: expect.stringMatching(/no usable idempotency key.*255/) })
  })
})

describe('dead-lettering on JetStream', () => {
  it('copies the message with its reason to the dead-letter subject, then terminates it', async () => {
    const { js, published } = fakeJetStream()
    const msg = fakeMsg({
      data: '{"n":2}',
      headers: { 'Nats-Msg-Id': 'm-2', 'Nats-Expected-Stream': 'ORDERS', tenant: 't1' },
      deliveryCount: 5,
    })
    await deadLetterer(js, { subject: 'dlq.orders' })(msg, 'm-2', 'Error: card declined\r\nat line 2')
    expect(published).toHaveLength(1)
    const [copy] = published
    expect(copy?.subject).toBe('dlq.orders')
    expect(copy?.data).toBe('{"n":2}')
    expect(copy?.options.msgID).toBe('m-2')
    const h = copy?.options.headers
    expect(h?.get(DeadLetterHeaders.REASON)).toBe('Error: card declined at line 2')
    expect(h?.get(DeadLetterHeaders.DELIVERY_COUNT)).toBe('5')
    expect(h?.get(DeadLetterHeaders.SEQUENCE)).toBe('42')
    expect(h?.get(DeadLetterHeaders.MSG_ID)).toBe('m-2')
    expect(h?.get('tenant')).toBe('t1')
    // Headers the server acts on are not copied: Nats-Expected-Stream would make the dead-letter stream refuse it.
    expect(h?.has('Nats-Expected-Stream')).toBe(false)
    expect(msg.calls).toEqual(['term'])
  })

  it('does not terminate the message when the dead-letter stream did not confirm the copy', async () => {
    const { js } = fakeJetStream(() => Object.assign(new Error('no responders'), { code: '503' }))
    const msg = fakeMsg()
    await expect(deadLetterer(js, { subject: 'dlq.orders' })(msg, 'k', 'boom')).rejects.toThrow('no responders')
    expect(msg.calls).toEqual([])
  })

  it('only terminates when there is no dead-letter subject, passing the reason only when asked', async () => {
    const { js, published } = fakeJetStream()
    const plain = fakeMsg()
    const withReason = fakeMsg()
    await deadLetterer(js, { subject: false })(plain, 'k', 'boom')
    await deadLetterer(js, { subject: false, termReason: true })(withReason, 'k', 'boom')
    expect(published).toEqual([])
    expect([plain.calls, withReason.calls]).toEqual([['term'], ['term:boom']])
  })
})

describe('the durable consumer’s settings', () => {
  const info = (config: { ack_policy: string; ack_wait?: number; max_deliver?: number }) => ({
    name: 'billing',
    stream_name: 'ORDERS',
    config,
  })

  it('reads ack_wait in milliseconds', () => {
    expect(checkConsumer(info({ ack_policy: 'explicit', ack_wait: 4e9, max_deliver: -1 }), 5)).toEqual({
      ackWaitMs: 4000,
    })
  })

  it('refuses a consumer without explicit acks', () => {
    expect(() => checkConsumer(info({ ack_policy: 'all', max_deliver: -1 }), 5)).toThrow(/needs "explicit"/)
  })

  it('refuses a max_deliver that would stop redeliveries before maxAttempts', () => {
    expect(() => checkConsumer(info({ ack_policy: 'explicit', max_deliver: 5 }), 5)).toThrow(/max_deliver to -1/)
    expect(checkConsumer(info({ ack_policy: 'explicit', max_deliver: 6 }), 5).ackWaitMs).toBe(30_000)
  })
})
