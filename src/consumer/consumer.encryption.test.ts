// A consumer over an encrypted Idempotency: outcomes are sealed like run()'s, and a duplicate
// whose stored result cannot be opened is dead-lettered, never run again.

import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { flipCharacter, readResult, writeResult } from '../../test/support/core/stored-result.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { IdempotentConsumer } from './consumer.js'

const keys = { k1: randomBytes(32) }

describe('a consumer with encryption', () => {
  function setup() {
    const store = new MemoryStore()
    const idem = new Idempotency({ store, encryption: { keys, current: 'k1' } })
    const broker = new FakeBroker<{ n: number }>({ maxDelayMs: 5 })
    let runs = 0
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem,
      handler: (payload) => {
        runs++
        return { secret: `card-${payload.n}` }
      },
      backoff: () => 1,
    })
    return { store, idem, broker, consumer, runs: () => runs }
  }

  it('stores the handler’s outcome sealed and replays it to a duplicate', async () => {
    const { store, idem, broker, consumer, runs } = setup()
    broker.publish('m1', { n: 4242 })
    broker.publish('m1', { n: 4242 })
    const [first, second] = broker.take()
    expect(await consumer.handle(first as never)).toMatchObject({ outcome: 'executed' })
    expect(await consumer.handle(second as never)).toMatchObject({ outcome: 'replayed' })
    expect(runs()).toBe(1)
    const { result } = await readResult(store, idem.recordId('m1'))
    expect(result).toMatch(/^e1:k1:/)
    expect(result).not.toContain('card-4242')
  })

  it('dead-letters a duplicate whose stored result fails authentication, without running it', async () => {
    const { store, idem, broker, consumer, runs } = setup()
    broker.publish('m1', { n: 1 })
    await consumer.handle(broker.take()[0] as never)
    const { result, fingerprint } = await readResult(store, idem.recordId('m1'))
    await writeResult(store, idem.recordId('m1'), fingerprint, flipCharacter(result))
    broker.publish('m1', { n: 1 })
    const outcome = await consumer.handle(broker.take()[0] as never)
    expect(outcome).toMatchObject({
      outcome: 'dead_lettered',
      reason: expect.stringMatching(/STORED_RESULT_AUTHENTICATION_FAILED/),
    })
    expect(runs()).toBe(1)
    expect(broker.retried).toEqual([])
  })
})
