import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireRedisBinaries } from '../../test/services.js'
import { type RedisProcess, startPrivateRedis } from '../../test/support/gateway/private-redis.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import type { IdempotencyStore } from '../contract/types.js'
import { LeaseLostError, ResultTooLargeError, StoreUnavailableError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { type BreakerState, BreakerStore } from './breaker-store.js'
import { openStores } from './open-stores.js'

/** A MemoryStore whose `get` fails like an unreachable server while `down`, or hangs while `hanging`. */
class FlakyStore extends MemoryStore {
  down = false
  hanging: Promise<void> | undefined
  gets = 0

  override async get(id: string) {
    this.gets++
    if (this.hanging !== undefined) await this.hanging
    if (this.down) throw new StoreUnavailableError('Redis at 127.0.0.1:6399 is unreachable: connect ECONNREFUSED')
    return super.get(id)
  }
}

function breakerOver(store: IdempotencyStore, failures = 3, halfOpenAfter = 150) {
  const breaker = new BreakerStore('fake', store, { failures, halfOpenAfter })
  const changes: [BreakerState, BreakerState][] = []
  breaker.onStateChange((state, previous) => changes.push([state, previous]))
  return { breaker, changes }
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected the call to fail')
    },
    (error: unknown) => error as Error,
  )

describe('BreakerStore', () => {
  it('opens after N consecutive store failures, then fails at once without calling the store', async () => {
    const flaky = new FlakyStore()
    const { breaker, changes } = breakerOver(flaky, 3)
    flaky.down = true
    for (let i = 1; i <= 2; i++) {
      expect((await failure(breaker.get('k'))).message).toContain('ECONNREFUSED')
      expect(breaker.state).toBe('closed')
    }
    expect((await failure(breaker.get('k'))).message).toContain('ECONNREFUSED')
    expect(breaker.state).toBe('open')
    expect(breaker.opened).toBe(1)
    expect(changes).toEqual([['open', 'closed']])

    const callsWhenOpened = flaky.gets
    const refused = await failure(breaker.get('k'))
    expect(refused).toBeInstanceOf(StoreUnavailableError)
    expect(refused.message).toContain('breaker for store "fake" is open')
    await failure(breaker.begin('k', 'fp', 1000, 1000))
    expect(flaky.gets).toBe(callsWhenOpened)
  })

  it('a success between failures starts the count again', async () => {
    const flaky = new FlakyStore()
    const { breaker } = breakerOver(flaky, 2)
    flaky.down = true
    await failure(breaker.get('k'))
    flaky.down = false
    await breaker.get('k')
    flaky.down = true
    await failure(breaker.get('k'))
    expect(breaker.state).toBe('closed')
  })

  it('half-opens after halfOpenAfter: one probe goes through, and its success closes the breaker', async () => {
    const flaky = new FlakyStore()
    const { breaker, changes } = breakerOver(flaky, 1, 150)
    flaky.down = true
    await failure(breaker.get('k'))
    expect(breaker.state).toBe('open')
    flaky.down = false
    const before = flaky.gets
    // Poll: every call before the delay is refused without reaching the store.
    await until('the probe to succeed', () =>
      breaker.get('k').then(
        () => true,
        () => false,
      ),
    )
    expect(flaky.gets).toBe(before + 1)
    expect(breaker.state).toBe('closed')
    expect(changes).toEqual([
      ['open', 'closed'],
      ['half_open', 'open'],
      ['closed', 'half_open'],
    ])
  })

  it('refuses other calls while the probe is out; a failed probe opens it again', async () => {
    const flaky = new FlakyStore()
    const { breaker } = breakerOver(flaky, 1, 100)
    flaky.down = true
    await failure(breaker.get('k'))
    let answer = (): void => {}
    flaky.hanging = new Promise<void>((resolve) => {
      answer = resolve
    })
    let probe: Promise<Error> | undefined
    await until('the breaker to half-open', () => {
      probe = failure(breaker.get('probe'))
      return breaker.state === 'half_open'
    })
    const gets = flaky.gets
    const refused = await failure(breaker.get('other'))
    expect(refused.message).toContain('breaker for store "fake" is open (half-open')
    expect(flaky.gets).toBe(gets)
    answer()
    expect((await probe)?.message).toContain('ECONNREFUSED')
    expect(breaker.state).toBe('open')
    expect(breaker.opened).toBe(2)
  })

  it('does not count the contract outcomes: LeaseLostError, a result over the limit, bad arguments', async () => {
    const memory = new MemoryStore({ maxResultBytes: 8 })
    const { breaker } = breakerOver(memory, 1)
    const claim = await breaker.begin('k', 'fp', 10_000, 10_000)
    if (claim.outcome !== 'acquired') throw new Error(claim.outcome)
    for (let i = 0; i < 5; i++) {
      expect(await failure(breaker.complete('k', 'not-the-token', '"r"', 10_000))).toBeInstanceOf(LeaseLostError)
      expect(await failure(breaker.release('k', 'not-the-token'))).toBeInstanceOf(LeaseLostError)
      expect(await failure(breaker.complete('k', claim.token, '"far too long"', 10_000))).toBeInstanceOf(
        ResultTooLargeError,
      )
      expect(await failure(breaker.begin('', 'fp', 10_000, 10_000))).toBeInstanceOf(TypeError)
    }
    expect(breaker.state).toBe('closed')
    expect(breaker.opened).toBe(0)
    await breaker.complete('k', claim.token, '"ok"', 10_000)
    expect((await breaker.get('k'))?.result).toBe('"ok"')
  })

  it('passes maxResultBytes through, closes the store, and counts a closed store as down', async () => {
    const memory = new MemoryStore({ maxResultBytes: 1234 })
    const { breaker } = breakerOver(memory, 1)
    expect(breaker.maxResultBytes).toBe(1234)
    await breaker.close()
    expect(memory.closed).toBe(true)
    await failure(breaker.get('k'))
    expect(breaker.state).toBe('open')
  })

  it('a listener that throws does not change the call outcome', async () => {
    const flaky = new FlakyStore()
    const breaker = new BreakerStore('fake', flaky, { failures: 1, halfOpenAfter: 1000 })
    const stop = breaker.onStateChange(() => {
      throw new Error('listener bug')
    })
    flaky.down = true
    expect((await failure(breaker.get('k'))).message).toContain('ECONNREFUSED')
    expect(breaker.state).toBe('open')
    stop()
  })

  it('refuses bad options', () => {
    const memory = new MemoryStore()
    expect(() => new BreakerStore('s', memory, { failures: 0, halfOpenAfter: 10 })).toThrow(/failures/)
    expect(() => new BreakerStore('s', memory, { failures: 1, halfOpenAfter: -1 })).toThrow(/halfOpenAfter/)
  })
})

if (await requireRedisBinaries('BreakerStore over a private Redis')) {
  describe('BreakerStore over a private Redis that dies and comes back', () => {
    let redis: (RedisProcess & { url: string }) | undefined
    beforeAll(async () => {
      redis = await startPrivateRedis()
    }, 30_000)
    afterAll(async () => {
      await redis?.stop()
    }, 30_000)

    it('fails calls while Redis is down, opens, and closes again once Redis is back', async () => {
      const server = redis as RedisProcess & { url: string }
      const stores = await openStores({ r: { type: 'redis', url: server.url } }, { failures: 2, halfOpenAfter: 200 })
      try {
        const { store } = stores.get('r')
        expect((await store.begin('before', 'fp', 10_000, 10_000)).outcome).toBe('acquired')

        await server.kill()
        for (let i = 0; i < 2; i++) {
          expect(await failure(store.begin('down', 'fp', 10_000, 10_000))).toBeInstanceOf(StoreUnavailableError)
        }
        expect(store.state).toBe('open')
        expect((await failure(store.get('down'))).message).toContain('breaker for store "r" is open')

        await server.start()
        await until(
          () => `the breaker to close (state ${store.state})`,
          () =>
            store.begin('after', 'fp', 10_000, 10_000).then(
              (claim) => claim.outcome === 'acquired',
              () => false,
            ),
        )
        expect(store.state).toBe('closed')
        expect(store.opened).toBeGreaterThanOrEqual(1)
      } finally {
        await stores.close()
      }
    })
  })
}
