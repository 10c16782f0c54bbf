import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { fakeMsg } from '../../../test/support/brokers/nats/jetstream-fakes.test-helper.js'
import { waitFor } from '../../../test/support/brokers/nats/nats.test-helper.js'
import { decodeJson } from '../../consumer/decode-json.js'
import type { Delivery, DeliveryResult } from '../../consumer/types.js'
import { toDelivery } from './jetstream-delivery.js'
import { type ConsumerCore, FetchLoop, type FetchLoopOptions } from './jetstream-fetch-loop.js'
import type { FetchedMessages, JsMsgLike, PullConsumerLike } from './nats-driver.js'

/** A pull consumer that serves `pulls` in order (an array of messages, or an error), then waits until stopped. */
function fakePull(pulls: (JsMsgLike[] | Error)[]) {
  const asked: number[] = []
  const pull: PullConsumerLike = {
    info: () => Promise.reject(new Error('not in this double')),
    async fetch({ max_messages }) {
      asked.push(max_messages)
      const next = pulls.shift()
      if (next instanceof Error) throw next
      let stopped = false
      let wake = () => {}
      const messages: FetchedMessages = {
        stop() {
          stopped = true
          wake()
        },
        async *[Symbol.asyncIterator]() {
          if (next !== undefined) {
            for (const msg of next) yield msg
            return
          }
          // Nothing left: hold the pull open, as the server does, until stop().
          while (!stopped) await new Promise<void>((resolve) => (wake = resolve))
        },
      }
      return messages
    },
  }
  return { pull, asked }
}

/** A core with `slots` slots whose deliveries stay in flight until `settleAll()`. */
function fakeCore(slots: number) {
  const held: Delivery<unknown>[] = []
  const batches: number[] = []
  const waiters = new Set<{ atLeast: number; resolve: () => void }>()
  const core: ConsumerCore<unknown> & { settleAll(): void } = {
    get capacity() {
      return Math.max(0, slots - held.length)
    },
    get inFlight() {
      return held.length
    },
    whenCapacity(atLeast) {
      if (core.capacity >= atLeast) return Promise.resolve()
      return new Promise<void>((resolve) => waiters.add({ atLeast, resolve }))
    },
    async handle(delivery) {
      held.push(delivery)
      return { outcome: 'executed', key: delivery.key } satisfies DeliveryResult
    },
    async handleBatch(deliveries) {
      batches.push(deliveries.length)
      held.push(...deliveries)
      return deliveries.map((d) => ({ outcome: 'executed', key: d.key }) satisfies DeliveryResult)
    },
    settleAll() {
      held.length = 0
      for (const waiter of [...waiters]) {
        if (core.capacity < waiter.atLeast) continue
        waiters.delete(waiter)
        waiter.resolve()
      }
    },
  }
  return { core, held, batches }
}

function options(overrides: Partial<FetchLoopOptions<unknown>> = {}): FetchLoopOptions<unknown> {
  const settings = {
    key: 'msgIdOrSequence' as const,
    streamEpoch: 1,
    decode: decodeJson,
    extendEveryMs: 1000,
    doubleAck: false as const,
    deadLetter: async () => {},
  }
  return {
    translate: (msg) => toDelivery(msg, settings),
    deadLetter: async () => {},
    batch: true,
    maxBatch: 100,
    expiresMs: 1000,
    onError: () => {},
    isClosed: () => false,
    recover: async () => {},
    ...overrides,
  }
}

const msgs = (...seqs: number[]) => seqs.map((seq) => fakeMsg({ seq }))
const stats = () => ({ pulls: 0, pullFailures: 0, rejected: 0 })

describe('the JetStream pull loop', () => {
  it('asks for the free capacity, hands a pull to the core as one batch, and waits for half the slots before pulling again', async () => {
    const { pull, asked } = fakePull([msgs(1, 2, 3, 4), msgs(5, 6, 7)])
    const { core, batches } = fakeCore(4)
    const loop = new FetchLoop(pull, core, stats(), options())
    await waitFor('the first batch', () => batches.length === 1)
    await sleep(50)
    expect(asked).toEqual([4])
    expect(batches).toEqual([4])
    core.settleAll()
    await waitFor('the second batch', () => batches.length === 2)
    await sleep(50)
    // Three of four slots taken: one free is less than half, so no pull for a single message.
    expect(asked).toEqual([4, 4])
    expect(batches).toEqual([4, 3])
    await loop.stop()
  })

  it('dead-letters a message the core cannot take, without handing it over', async () => {
    const bad = fakeMsg({ data: 'not json', seq: 7 })
    const { pull } = fakePull([[bad, ...msgs(8)]])
    const { core, held } = fakeCore(4)
    const deadLettered: string[] = []
    const s = stats()
    const loop = new FetchLoop(
      pull,
      core,
      s,
      options({
        deadLetter: async (_msg, copyId, reason) => void deadLettered.push(`${copyId}: ${reason.slice(0, 30)}`),
      }),
    )
    await waitFor('the good message handed over', () => held.length === 1)
    expect(deadLettered).toEqual(['nats:ORDERS:1:7: the payload could not be decod'])
    expect(held.map((d) => d.key)).toEqual(['nats:ORDERS:1:8'])
    expect(s.rejected).toBe(1)
    await loop.stop()
  })

  it('pulls again after a failed pull, re-reading what may have changed', async () => {
    const { pull, asked } = fakePull([new Error('DISCONNECT'), msgs(1)])
    const { core, held } = fakeCore(2)
    const errors: unknown[] = []
    let recovered = 0
    const s = stats()
    const loop = new FetchLoop(
      pull,
      core,
      s,
      options({ onError: (e) => errors.push(e), recover: async () => void recovered++ }),
    )
    await sleep(300)
    // The third pull asks for the one free slot, half of two.
    expect(asked).toEqual([2, 2, 1])
    expect(errors).toHaveLength(1)
    expect(recovered).toBe(1)
    expect(s).toMatchObject({ pulls: 3, pullFailures: 1 })
    expect(held).toHaveLength(1)
    await loop.stop()
  })

  it('stops for good once the connection is closed', async () => {
    const { pull, asked } = fakePull([new Error('CONNECTION_CLOSED')])
    const { core } = fakeCore(2)
    const loop = new FetchLoop(pull, core, stats(), options({ isClosed: () => true }))
    await loop.done
    expect(asked).toEqual([2])
  })

  it('hands straight back, unhandled, a message that arrives after stop()', async () => {
    const late = fakeMsg({ seq: 9 })
    let release: (() => void) | undefined
    const pull: PullConsumerLike = {
      info: () => Promise.reject(new Error('unused')),
      async fetch() {
        return {
          stop: () => {},
          async *[Symbol.asyncIterator]() {
            await new Promise<void>((resolve) => (release = resolve))
            yield late
          },
        }
      },
    }
    const { core, held } = fakeCore(2)
    const loop = new FetchLoop(pull, core, stats(), options())
    await waitFor('the pull to be open', () => release !== undefined)
    const stopped = loop.stop()
    release?.()
    await stopped
    expect(late.calls).toEqual(['nak'])
    expect(held).toEqual([])
  })
})
