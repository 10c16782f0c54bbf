import { describe, expect, it } from 'vitest'
import type { MqttPublishPacket } from './mqtt-client.js'
import { DeliveryCounts, deadLetterOf, keyOf, ORIGINAL_TOPIC_PROPERTY, REASON_PROPERTY } from './mqtt-message.js'
import { mqttSessionOptions } from './session-options.js'

const packet = (userProperties?: Record<string, string | string[]>, extra: Partial<MqttPublishPacket> = {}) =>
  ({
    topic: 'orders',
    payload: Buffer.from('{"n":1}'),
    qos: 1,
    dup: false,
    retain: false,
    messageId: 7,
    properties: userProperties === undefined ? undefined : { userProperties },
    ...extra,
  }) as MqttPublishPacket

describe('keyOf', () => {
  it('reads the key from the user property, or from a function of the packet', () => {
    expect(keyOf(packet({ 'idem-key': 'k-1' }), 'idem-key')).toEqual({ key: 'k-1' })
    expect(keyOf(packet({ 'message-id': 'k-2' }), 'message-id')).toEqual({ key: 'k-2' })
    expect(keyOf(packet(), (p) => `${p.topic}:x`)).toEqual({ key: 'orders:x' })
  })

  it('gives a reason instead of a key when there is none, or it is ambiguous or invalid; never the packet id', () => {
    expect(keyOf(packet(), 'idem-key')).toEqual({ reason: expect.stringMatching(/idem-key is missing/) })
    expect(keyOf(packet({ 'idem-key': ['a', 'b'] }), 'idem-key')).toEqual({ reason: expect.stringMatching(/2 times/) })
    expect(keyOf(packet({ 'idem-key': ['a', 'a'] }), 'idem-key')).toEqual({ key: 'a' })
    expect(keyOf(packet({ 'idem-key': 'é' }), 'idem-key')).toEqual({ reason: expect.stringMatching(/printable ASCII/) })
    const throwing = () => {
      throw new Error('boom')
    }
    expect(keyOf(packet(), throwing)).toEqual({ reason: 'the key function threw: boom' })
  })
})

describe('DeliveryCounts', () => {
  it('counts a first delivery as 1, a first sight with dup as 2, and every later one', () => {
    const counts = new DeliveryCounts()
    expect(counts.arrived('a', false)).toBe(1)
    expect(counts.again('a')).toBe(2)
    expect(counts.arrived('a', true)).toBe(3)
    expect(counts.arrived('b', true)).toBe(2)
    counts.forget('a')
    expect(counts.arrived('a', false)).toBe(1)
  })

  it('forgets the oldest keys past its bound', () => {
    const counts = new DeliveryCounts(2)
    counts.arrived('a', false)
    counts.arrived('b', false)
    counts.arrived('c', false)
    expect(counts.arrived('a', false)).toBe(1)
    expect(counts.arrived('c', false)).toBe(2)
  })
})

it('builds a dead letter with the original bytes and properties, the reason and the original topic', () => {
  const original = packet(
    { 'idem-key': 'k' },
    { properties: { userProperties: { 'idem-key': 'k' }, contentType: 'x' } },
  )
  const letter = deadLetterOf(original, 'r'.repeat(2000))
  expect(letter.payload.toString()).toBe('{"n":1}')
  expect(letter.options.qos).toBe(1)
  expect(letter.options.properties?.contentType).toBe('x')
  const props = letter.options.properties?.userProperties ?? {}
  expect(props['idem-key']).toBe('k')
  expect(props[ORIGINAL_TOPIC_PROPERTY]).toBe('orders')
  expect((props[REASON_PROPERTY] as string).length).toBe(1024)
})

it('makes client options for a persistent MQTT 5 session, connected later by the consumer', () => {
  expect(mqttSessionOptions({ clientId: 'billing-1', sessionExpiry: '2h', receiveMaximum: 10 })).toEqual({
    protocolVersion: 5,
    clean: false,
    clientId: 'billing-1',
    keepalive: 30,
    reconnectPeriod: 1000,
    manualConnect: true,
    properties: { sessionExpiryInterval: 7200, receiveMaximum: 10 },
  })
  expect(() => mqttSessionOptions({ clientId: '' })).toThrow(/stable, non-empty clientId/)
})
