// consumeJetStream's options are checked, and their old names read, before anything is asked of NATS.

import { afterEach, describe, expect, it, vi } from 'vitest'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeJetStream } from './jetstream-consumer.js'
import type { NatsConnectionLike } from './nats-driver.js'

afterEach(() => {
  vi.restoreAllMocks()
})

/** A connection that stops consumeJetStream at its first use: the options were accepted by then. */
const reached = new Error('reached NATS')
const client = {
  jetstream: () => {
    throw reached
  },
} as unknown as NatsConnectionLike

const base = {
  stream: 'S',
  durable: 'd',
  deadLetterSubject: false as const,
  idem: new Idempotency({ store: new MemoryStore() }),
  handler: () => {},
}

describe('consumeJetStream options', () => {
  it('takes durations for fetchExpires, deadLetterTimeout and doubleAck.timeout', async () => {
    await expect(
      consumeJetStream({ ...base, client, fetchExpires: '2s', deadLetterTimeout: '5s', doubleAck: { timeout: '1s' } }),
    ).rejects.toBe(reached)
    await expect(consumeJetStream({ ...base, client, fetchExpires: '500ms' })).rejects.toThrow(
      'fetchExpires must be at least 1s, got 500 ms',
    )
    await expect(consumeJetStream({ ...base, client, maxBatch: 0 })).rejects.toThrow(
      'maxBatch must be a positive integer, got 0',
    )
  })

  it('still reads connection and the millisecond names, warning once for each', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    await expect(
      consumeJetStream({
        ...base,
        connection: client,
        fetchExpiresMs: 2000,
        deadLetterTimeoutMs: 3000,
        doubleAck: { timeoutMs: 1000 },
      }),
    ).rejects.toBe(reached)
    const messages = warn.mock.calls.map((call) => String(call[0]))
    expect(messages).toEqual([
      'consumeJetStream({ connection }) is deprecated: use consumeJetStream({ client }) instead',
      'consumeJetStream({ deadLetterTimeoutMs }) is deprecated: use consumeJetStream({ deadLetterTimeout }) instead',
      'consumeJetStream({ fetchExpiresMs }) is deprecated: use consumeJetStream({ fetchExpires }) instead',
      'consumeJetStream({ doubleAck.timeoutMs }) is deprecated: use consumeJetStream({ doubleAck.timeout }) instead',
    ])
  })

  it('says which option is missing or given twice', async () => {
    await expect(consumeJetStream({ ...base } as never)).rejects.toThrow('consumeJetStream needs client')
    await expect(consumeJetStream({ ...base, client, fetchExpires: '2s', fetchExpiresMs: 2000 })).rejects.toThrow(
      'give fetchExpires only',
    )
  })
})
