import { afterEach, describe, expect, it, vi } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { ErrorCode, IdempotencyError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { IdempotentConsumer } from './consumer.js'
import { consumerHandle, isIdempotentConsumer, resolveConsumer } from './handle.js'
import { renamedDuration, renamedOption } from './renamed.js'
import { StaleDeliveryError } from './stale-delivery.js'
import type { ConsumerEvents } from './types.js'

afterEach(() => {
  vi.restoreAllMocks()
})

const idem = () => new Idempotency({ store: new MemoryStore() })

describe('the on option', () => {
  it('attaches listeners before the first delivery, and off() detaches one', async () => {
    const settled: ConsumerEvents['settled'][] = []
    const received: string[] = []
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem: idem(),
      handler: () => 'ok',
      on: { settled: (r) => settled.push(r), received: (e) => received.push(e.key) },
    })
    const broker = new FakeBroker<{ n: number }>({ maxDelayMs: 1 })
    broker.publish('m1', { n: 1 })
    await consumer.handle(broker.take()[0] as never)
    expect(received).toEqual(['m1'])
    expect(settled.map((r) => [r.key, r.outcome])).toEqual([['m1', 'executed']])

    const late: string[] = []
    const listener = (e: ConsumerEvents['received']) => late.push(e.key)
    consumer.on('received', listener)
    consumer.off('received', listener)
    broker.publish('m2', { n: 2 })
    await consumer.handle(broker.take()[0] as never)
    expect(late).toEqual([])
    expect(received).toEqual(['m1', 'm2'])
  })

  it('refuses an unknown event or a listener that is not a function', () => {
    const options = { idem: idem(), handler: () => {} }
    expect(() => new IdempotentConsumer({ ...options, on: { setled: () => {} } as never })).toThrow(/on\.setled/)
    expect(() => new IdempotentConsumer({ ...options, on: { settled: 'x' } as never })).toThrow(TypeError)
  })
})

describe('resolveConsumer', () => {
  it('builds the core from the flat options, the on option included', () => {
    const seen: string[] = []
    const { core, options } = resolveConsumer(
      { idem: idem(), handler: () => {}, maxAttempts: 7, on: { received: (e) => seen.push(e.key) } },
      'consumeTest',
    )
    expect(isIdempotentConsumer(core)).toBe(true)
    expect(core.maxAttempts).toBe(7)
    expect(options?.maxAttempts).toBe(7)
  })

  it('takes a ready-made consumer as it is and attaches the on listeners to it', async () => {
    const ready = new IdempotentConsumer<{ n: number }>({ idem: idem(), handler: () => {} })
    const keys: string[] = []
    const { core, options } = resolveConsumer(
      { consumer: ready, on: { settled: (r) => keys.push(r.key) } },
      'consumeTest',
    )
    expect(core).toBe(ready)
    expect(options).toBeUndefined()
    const broker = new FakeBroker<{ n: number }>({ maxDelayMs: 1 })
    broker.publish('k', { n: 1 })
    await core.handle(broker.take()[0] as never)
    expect(keys).toEqual(['k'])
  })

  it('still takes the nested consumer options, with one deprecation warning', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const nested = { idem: idem(), handler: () => {}, concurrency: 3 }
    const first = resolveConsumer({ consumer: nested }, 'consumeNested')
    resolveConsumer({ consumer: nested }, 'consumeNested')
    expect(first.core.capacity).toBe(3)
    expect(first.options).toBe(nested)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(String(warn.mock.calls[0]?.[0])).toMatch(
      /consumeNested\(\{ consumer: \{ idem, handler, … \} \}\) is deprecated/,
    )
    expect(warn.mock.calls[0]?.[1]).toMatchObject({ type: 'DeprecationWarning', code: 'IDEM_DEPRECATED' })
  })

  it('says what is missing', () => {
    expect(() => resolveConsumer({} as never, 'consumeTest')).toThrow(/consumeTest needs idem/)
    expect(() => resolveConsumer({ consumer: 42 } as never, 'consumeTest')).toThrow(
      /consumer must be an IdempotentConsumer/,
    )
  })
})

describe('consumerHandle', () => {
  it('delegates events to the core and closes once', async () => {
    const core = new IdempotentConsumer<{ n: number }>({ idem: idem(), handler: () => {} })
    let closes = 0
    const handle = consumerHandle(
      core,
      { rejected: 0 },
      {
        close: async () => {
          closes++
        },
        done: Promise.resolve(),
      },
      { consumerName: 'w1' },
    )
    const keys: string[] = []
    const listener = (e: ConsumerEvents['received']) => keys.push(e.key)
    const off = handle.on('received', listener)
    const broker = new FakeBroker<{ n: number }>({ maxDelayMs: 1 })
    broker.publish('a', { n: 1 })
    await core.handle(broker.take()[0] as never)
    off()
    broker.publish('b', { n: 2 })
    await core.handle(broker.take()[0] as never)
    expect(keys).toEqual(['a'])
    expect(handle.consumerName).toBe('w1')
    await Promise.all([handle.close(), handle.close()])
    expect(closes).toBe(1)
  })
})

describe('renamed options', () => {
  it('reads the old name with one warning, and refuses both', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    expect(renamedDuration({ pollMs: 2000 }, 'poll', 'pollMs', 'consumeRenamed', '', 5000)).toBe(2000)
    expect(renamedDuration({ poll: '3s' }, 'poll', 'pollMs', 'consumeRenamed', '', 5000)).toBe(3000)
    expect(renamedDuration({}, 'poll', 'pollMs', 'consumeRenamed', '', 5000)).toBe(5000)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(String(warn.mock.calls[0]?.[0])).toBe(
      'consumeRenamed({ pollMs }) is deprecated: use consumeRenamed({ poll }) instead',
    )
    expect(() => renamedOption({ a: 1, b: 2 }, 'a', 'b', 'consumeRenamed')).toThrow(TypeError)
  })
})

describe('StaleDeliveryError', () => {
  it('is an IdempotencyError with the STALE_DELIVERY code', () => {
    const error = new StaleDeliveryError('k1', 'ack')
    expect(error).toBeInstanceOf(IdempotencyError)
    expect(error.code).toBe(ErrorCode.STALE_DELIVERY)
    expect(error.name).toBe('StaleDeliveryError')
    expect(error.message).toBe('cannot ack "k1": its channel closed since the delivery; the broker redelivers it')
  })
})
