import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { IdempotentConsumer } from './consumer.js'

// Random schedules of deliveries, publisher duplicates, handler failures, lost acks and consumer
// crashes (the broker voids every unacknowledged delivery and a new consumer takes over, while the
// old one's handlers die before their effect). Whatever the schedule: each key's effect happens at
// most once, exactly once unless it is poison, and every copy ends acknowledged or dead-lettered.

type Kind = 'fine' | 'flaky' | 'poison'
type Step =
  | { do: 'take'; n: number; batch: boolean }
  | { do: 'crash' }
  | { do: 'failAck' }
  | { do: 'failRetry' }
  | { do: 'wait'; ms: number }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ do: fc.constant('take' as const), n: fc.integer({ min: 1, max: 6 }), batch: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ do: 'crash' as const }) },
  { weight: 1, arbitrary: fc.constant({ do: 'failAck' as const }) },
  { weight: 1, arbitrary: fc.constant({ do: 'failRetry' as const }) },
  { weight: 3, arbitrary: fc.record({ do: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 3 }) }) },
)

const scenarioArb = fc.record({
  messages: fc.array(
    fc.record({
      kind: fc.constantFrom<Kind>('fine', 'fine', 'fine', 'flaky', 'poison'),
      copies: fc.integer({ min: 1, max: 3 }),
      lane: fc.integer({ min: 0, max: 3 }),
    }),
    { minLength: 1, maxLength: 8 },
  ),
  steps: fc.array(stepArb, { maxLength: 25 }),
  concurrency: fc.integer({ min: 1, max: 4 }),
  finalBatch: fc.boolean(),
})

it('gives every key at most one effect and settles every copy, whatever the schedule', async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, async ({ messages, steps, concurrency, finalBatch }) => {
      const store = new MemoryStore()
      const broker = new FakeBroker<{ kind: Kind }>({ maxDelayMs: 2 })
      const effects = new Map<string, number>()
      const calls = new Map<string, number>()
      const closing: Promise<void>[] = []
      let generation = 0
      const newConsumer = () => {
        const mine = ++generation
        return new IdempotentConsumer<{ kind: Kind }>({
          idem: new Idempotency({ store }),
          concurrency,
          maxAttempts: 3,
          backoff: () => 1,
          shutdownTimeout: 5,
          handler: async ({ kind }, ctx) => {
            const call = (calls.get(ctx.key) ?? 0) + 1
            calls.set(ctx.key, call)
            await sleep(call % 2)
            // A consumer that crashed never gets as far as the effect.
            if (mine !== generation) throw new Error('the process died')
            if (kind === 'poison' || (kind === 'flaky' && call === 1)) throw new Error(`${kind} message`)
            effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
          },
        })
      }
      let consumer = newConsumer()
      messages.forEach(({ copies, lane }, i) => {
        for (let c = 0; c < copies; c++)
          broker.publish(`key-${i}`, messages[i] as { kind: Kind }, `lane-${(lane + c) % 4}`)
      })

      for (const step of steps) {
        if (step.do === 'take') {
          const deliveries = broker.take(step.n)
          if (step.batch) void consumer.handleBatch(deliveries)
          else for (const delivery of deliveries) void consumer.handle(delivery)
        } else if (step.do === 'crash') {
          broker.crash()
          closing.push(consumer.close())
          consumer = newConsumer()
        } else if (step.do === 'failAck') {
          broker.fail('ack')
        } else if (step.do === 'failRetry') {
          broker.fail('retry')
        } else {
          await sleep(step.ms)
        }
      }
      await broker.consume(consumer, { batch: finalBatch })
      await Promise.all(closing)
      await consumer.close()

      const copies = messages.reduce((sum, m) => sum + m.copies, 0)
      expect(broker.acked.length + broker.deadLettered.length).toBe(copies)
      messages.forEach(({ kind }, i) => {
        const key = `key-${i}`
        const effect = effects.get(key) ?? 0
        const deadLettered = broker.deadLettered.filter((d) => d.key === key)
        expect(effect).toBeLessThanOrEqual(1)
        if (kind === 'fine') {
          expect(effect).toBe(1)
          expect(deadLettered).toEqual([])
        } else if (kind === 'poison') {
          expect(effect).toBe(0)
          expect(deadLettered.length).toBeGreaterThan(0)
        } else if (effect === 0) {
          // A flaky message may run out of attempts (crashes count as deliveries): then it is dead-lettered.
          expect(deadLettered.map((d) => d.reason)).toContain('Error: flaky message')
        }
      })
      await store.close()
    }),
    { numRuns: 200 },
  )
}, 60_000)
