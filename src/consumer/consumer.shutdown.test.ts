import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { IdempotentConsumer } from './consumer.js'

describe('graceful shutdown', () => {
  it('hands a delivery that arrives after close straight back, without running it', async () => {
    let calls = 0
    const consumer = new IdempotentConsumer({
      idem: new Idempotency({ store: new MemoryStore() }),
      handler: () => {
        calls++
      },
    })
    await consumer.close()
    expect(consumer.closing).toBe(true)
    const broker = new FakeBroker()
    broker.publish('m1', 1)
    expect(await consumer.handle(broker.take()[0] as never)).toMatchObject({ outcome: 'retried', delayMs: 0 })
    expect(calls).toBe(0)
    expect(broker.retried).toMatchObject([{ key: 'm1', delayMs: 0 }])
    expect(broker.acked).toEqual([])
  })

  it('lets running handlers finish and hands queued deliveries back', async () => {
    const effects: string[] = []
    const consumer = new IdempotentConsumer<string>({
      idem: new Idempotency({ store: new MemoryStore() }),
      concurrency: 2,
      handler: async (name) => {
        await sleep(50)
        effects.push(name)
      },
    })
    const broker = new FakeBroker<string>()
    for (const name of ['a', 'b', 'c', 'd']) broker.publish(name, name)
    const handled = broker.take().map((d) => consumer.handle(d))
    await sleep(10)
    await consumer.close()
    const results = await Promise.all(handled)
    expect(results.map((r) => r.outcome)).toEqual(['executed', 'executed', 'retried', 'retried'])
    expect(effects.sort()).toEqual(['a', 'b'])
    expect(broker.acked.map((m) => m.key).sort()).toEqual(['a', 'b'])
    expect(consumer.inFlight).toBe(0)
  })

  it('aborts handlers that outlive the shutdown timeout, acks none of them, and a redelivery runs each once', async () => {
    const store = new MemoryStore()
    const effects = new Map<string, number>()
    const handler = async (name: string, ctx: { signal: AbortSignal }) => {
      await sleep(name === 'quick' ? 10 : 5000, undefined, { signal: ctx.signal })
      effects.set(name, (effects.get(name) ?? 0) + 1)
    }
    const first = new IdempotentConsumer<string>({
      idem: new Idempotency({ store }),
      shutdownTimeout: 100,
      handler,
    })
    const broker = new FakeBroker<string>()
    for (const name of ['quick', 'slow-1', 'slow-2']) broker.publish(name, name)
    const handled = broker.take().map((d) => first.handle(d))
    await sleep(30)
    await first.close()
    const results = await Promise.all(handled)
    expect(results.map((r) => r.outcome)).toEqual(['executed', 'retried', 'retried'])
    expect(broker.acked.map((m) => m.key)).toEqual(['quick'])
    expect(broker.retried.map((r) => [r.key, r.delayMs])).toEqual([
      ['slow-1', 0],
      ['slow-2', 0],
    ])
    expect(effects).toEqual(new Map([['quick', 1]]))

    // The next consumer (another process) gets the redeliveries and runs each exactly once.
    const second = new IdempotentConsumer<string>({
      idem: new Idempotency({ store }),
      handler: (name) => {
        effects.set(name, (effects.get(name) ?? 0) + 1)
      },
    })
    await broker.consume(second)
    expect(effects).toEqual(
      new Map([
        ['quick', 1],
        ['slow-1', 1],
        ['slow-2', 1],
      ]),
    )
  })

  it('does not wait for a handler that ignores the abort', async () => {
    const consumer = new IdempotentConsumer({
      idem: new Idempotency({ store: new MemoryStore() }),
      shutdownTimeout: 50,
      // Ignores its signal: close() must not wait the minute out (the test would time out).
      handler: () => sleep(60_000, undefined, { ref: false }),
    })
    const broker = new FakeBroker()
    broker.publish('stuck', 1)
    const handled = consumer.handle(broker.take()[0] as never)
    await sleep(10)
    await consumer.close()
    expect(await handled).toMatchObject({ outcome: 'retried', delayMs: 0 })
    expect(broker.acked).toEqual([])
  })
})
