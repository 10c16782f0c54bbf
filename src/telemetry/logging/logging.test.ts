// Each event idem/logging reports, driven for real, is written once, at its level, with its
// fields: run events of an Idempotency (and of an HttpIdempotency's idem), a consumer's dead
// letters and broker refusals, a detector's anomalies.

import { describe, expect, it } from 'vitest'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { Delivery } from '../../consumer/types.js'
import { fingerprintOf } from '../../core/fingerprint.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { OutboxRelay } from '../../outbox/relay.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { ManualClock } from '../../testing/manual-clock.js'
import { AnomalyDetector } from '../anomalies/detector.js'
import { idemLogging, type Logger, type LogLevel, logDigest } from './index.js'

interface Call {
  level: LogLevel
  entry: Record<string, unknown>
  message: string
}

/** A logger with pino's shape whose methods need their `this`, as pino's do. */
class FakeLogger implements Logger {
  readonly #calls: Call[] = []
  get calls(): Call[] {
    return this.#calls
  }
  debug(entry: object, message: string): void {
    this.#calls.push({ level: 'debug', entry: entry as Record<string, unknown>, message })
  }
  info(entry: object, message: string): void {
    this.#calls.push({ level: 'info', entry: entry as Record<string, unknown>, message })
  }
  warn(entry: object, message: string): void {
    this.#calls.push({ level: 'warn', entry: entry as Record<string, unknown>, message })
  }
  error(entry: object, message: string): void {
    this.#calls.push({ level: 'error', entry: entry as Record<string, unknown>, message })
  }
}

function rig(level?: LogLevel) {
  const logger = new FakeLogger()
  const logging = idemLogging({ logger, level })
  return { logger, logging }
}

const digests = (idem: Idempotency, key: string, scope: string) => ({
  recordDigest: logDigest(idem.recordId(key, scope)),
  keyDigest: logDigest(key),
})

describe('the run events of an Idempotency', () => {
  it('a takeover: warn, with the attempt', async () => {
    const { logger, logging } = rig()
    const clock = new ManualClock()
    const store = new MemoryStore({ clock: clock.now })
    const idem = new Idempotency({ store, lease: '10s', scope: 'payments' })
    logging.watch(idem, { name: 'billing' })
    await store.begin(idem.recordId('k1'), fingerprintOf(undefined), 10_000, 60_000)
    clock.advance(10_001)
    expect((await idem.run({ key: 'k1' }, () => 'ran')).status).toBe('executed')
    expect(logger.calls).toEqual([
      {
        level: 'warn',
        entry: {
          event: 'idem.takeover',
          scope: 'payments',
          ...digests(idem, 'k1', 'payments'),
          name: 'billing',
          attempt: 2,
        },
        message: expect.stringMatching(/lapsed lease.*attempt 2/),
      },
    ])
  })

  it('a lost claim: error, with when it was found lost', async () => {
    const { logger, logging } = rig()
    const store = new MemoryStore()
    const idem = new Idempotency({ store, lease: '10s' })
    logging.watch(idem)
    await idem
      .run({ key: 'k1' }, async () => {
        await store.delete(idem.recordId('k1'))
        await idem.run({ key: 'k1' }, () => 'the other worker')
        return 'the stalled worker'
      })
      .catch(() => undefined)
    expect(logger.calls).toEqual([
      {
        level: 'error',
        entry: { event: 'idem.lease_lost', scope: 'default', ...digests(idem, 'k1', 'default'), during: 'complete' },
        message: expect.any(String),
      },
    ])
  })

  it("a store failure: error, with the operation and the error's name, message and code", async () => {
    const { logger, logging } = rig()
    const store = new FaultyStore(new MemoryStore())
    store.fail('begin', 1)
    const idem = new Idempotency({ store })
    logging.watch(idem)
    await idem.run({ key: 'k1' }, () => 'ran').catch(() => undefined)
    expect(logger.calls).toEqual([
      {
        level: 'error',
        entry: {
          event: 'idem.store_error',
          scope: 'default',
          ...digests(idem, 'k1', 'default'),
          operation: 'begin',
          failOpen: false,
          error: { name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:6399 (during begin)', code: 'ECONNREFUSED' },
        },
        message: 'idem: the store failed during begin',
      },
    ])
  })

  it('a fail-open execution: warn, as idem.fail_open', async () => {
    const { logger, logging } = rig()
    const store = new FaultyStore(new MemoryStore())
    store.fail('begin', 1)
    const idem = new Idempotency({ store, failOpen: true })
    logging.watch(idem)
    expect(await idem.run({ key: 'k1' }, () => 'ran')).toMatchObject({ status: 'executed', failedOpen: true })
    expect(logger.calls).toEqual([
      {
        level: 'warn',
        entry: expect.objectContaining({ event: 'idem.fail_open', operation: 'begin', failOpen: true }),
        message: expect.stringMatching(/unprotected/),
      },
    ])
  })

  it('a mismatch: warn', async () => {
    const { logger, logging } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    logging.watch(idem)
    await idem.run({ key: 'k1', payload: { a: 1 } }, () => 'ran')
    await idem.run({ key: 'k1', payload: { a: 2 } }, () => 'ran').catch(() => undefined)
    expect(logger.calls).toEqual([
      {
        level: 'warn',
        entry: { event: 'idem.mismatch', scope: 'default', ...digests(idem, 'k1', 'default') },
        message: 'idem: a key was reused with a different payload',
      },
    ])
  })

  it('a released key: debug, and only when debug is asked for', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const quiet = rig()
    const verbose = rig('debug')
    quiet.logging.watch(idem)
    verbose.logging.watch(idem)
    await idem.run({ key: 'k1' }, () => Promise.reject(new TypeError('gateway timeout'))).catch(() => undefined)
    expect(quiet.logger.calls).toEqual([])
    expect(verbose.logger.calls).toEqual([
      {
        level: 'debug',
        entry: {
          event: 'idem.released',
          scope: 'default',
          ...digests(idem, 'k1', 'default'),
          error: { name: 'TypeError', message: 'gateway timeout' },
        },
        message: expect.any(String),
      },
    ])
  })

  it('writes nothing below its level, and no debug to a logger without debug', async () => {
    const logger = new FakeLogger()
    const noDebug: Logger = {
      info: logger.info.bind(logger),
      warn: logger.warn.bind(logger),
      error: logger.error.bind(logger),
    }
    const idem = new Idempotency({ store: new MemoryStore() })
    idemLogging({ logger: noDebug, level: 'debug' }).watch(idem)
    idemLogging({ logger, level: 'error' }).watch(idem)
    await idem.run({ key: 'k1', payload: 1 }, () => Promise.reject(new Error('flaky'))).catch(() => undefined)
    await idem.run({ key: 'k1', payload: 1 }, () => 'ran')
    await idem.run({ key: 'k1', payload: 2 }, () => 'ran').catch(() => undefined)
    // The mismatch at warn, once (from the first logging: the second writes errors only); no released.
    expect(logger.calls.map((c) => [c.level, c.entry.event])).toEqual([['warn', 'idem.mismatch']])
  })
})

describe('an HttpIdempotency', () => {
  it('is logged through its idem, once however often it is watched, with the route as scope', async () => {
    const { logger, logging } = rig()
    const http = new HttpIdempotency({ store: new MemoryStore() })
    const stop1 = logging.watch(http)
    const stop2 = logging.watch(http.idem)
    const request = (amount: number) => ({
      method: 'POST',
      url: '/orders',
      route: '/orders',
      headers: { 'content-type': 'application/json', authorization: 'Bearer alice', 'idempotency-key': 'k1' },
      body: JSON.stringify({ amount }),
    })
    const first = await http.decide(request(1))
    if (first.action === 'proceed') await first.capture.end(201, [])
    await http.decide(request(2))
    expect(logger.calls).toMatchObject([
      { level: 'warn', entry: { event: 'idem.mismatch', scope: 'http|POST /orders' } },
    ])
    stop1()
    stop1()
    await http.decide(request(3))
    expect(logger.calls).toHaveLength(2)
    stop2()
    await http.decide(request(4))
    expect(logger.calls).toHaveLength(2)
  })
})

describe('a consumer', () => {
  const delivery = (key: string, ack: () => Promise<void> = async () => {}): Delivery<{ n: number }> => ({
    key,
    payload: { n: 1 },
    deliveryCount: 1,
    ack,
    retry: async () => {},
    deadLetter: async () => {},
  })

  it('a dead letter: error, with the consumer, the reason and the error', async () => {
    const { logger, logging } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    class PaymentDeclined extends Error {
      override name = 'PaymentDeclined'
    }
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem,
      handler: () => {
        throw new PaymentDeclined('card expired')
      },
      isFinal: (error) => error instanceof PaymentDeclined,
    })
    logging.watch(consumer, { name: 'orders' })
    expect((await consumer.handle(delivery('m1'))).outcome).toBe('dead_lettered')
    expect((await consumer.handle(delivery('m2'))).outcome).toBe('dead_lettered')
    expect(logger.calls).toHaveLength(2)
    expect(logger.calls[0]).toEqual({
      level: 'error',
      entry: {
        event: 'idem.consumer.dead_lettered',
        consumer: 'orders',
        keyDigest: logDigest('m1'),
        reason: expect.stringMatching(/PaymentDeclined.*card expired/),
        durationMs: expect.any(Number),
        error: { name: 'PaymentDeclined', message: 'card expired' },
      },
      message: 'idem: consumer orders dead-lettered a message',
    })
  })

  it("a broker's refusal: error, with the operation", async () => {
    const { logger, logging } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    const consumer = new IdempotentConsumer<{ n: number }>({ idem, handler: () => 'done' })
    logging.watch({ consumer } as never)
    const refused = Object.assign(new Error('channel closed'), { code: 406 })
    await consumer.handle(delivery('m1', () => Promise.reject(refused)))
    expect(logger.calls).toEqual([
      {
        level: 'error',
        entry: {
          event: 'idem.consumer.broker_error',
          consumer: 'consumer',
          keyDigest: logDigest('m1'),
          operation: 'ack',
          error: { name: 'Error', message: 'channel closed', code: 406 },
        },
        message: expect.stringMatching(/refused ack/),
      },
    ])
  })
})

describe('an anomaly detector', () => {
  it('an anomaly: warn, with the kind, the subject and the rates', () => {
    const { logger, logging } = rig()
    let now = 0
    const detector = new AnomalyDetector({ warmup: 1, minEvents: 5, now: () => now })
    logging.watch(detector, { name: 'api' })
    detector.observe('orders', 'call')
    now = 10_000
    for (let i = 0; i < 5; i++) detector.observe('orders', 'replay')
    detector.close()
    expect(logger.calls).toEqual([
      {
        level: 'warn',
        entry: {
          event: 'idem.anomaly',
          scope: 'orders',
          kind: 'replays',
          subject: 'scope',
          rate: 0.5,
          baseline: 0,
          name: 'api',
        },
        message: 'idem: a burst of replays on orders: 0.5/s against 0/s normally',
      },
    ])
  })
})

describe('watch and close', () => {
  it('refuses a relay, which has no events, and what it does not know', () => {
    const { logging } = rig()
    const relay = Object.create(OutboxRelay.prototype) as OutboxRelay
    expect(() => logging.watch(relay)).toThrow(/onError/)
    expect(() => logging.watch({} as never)).toThrow(TypeError)
  })

  it('checks its logger and level', () => {
    expect(() => idemLogging({ logger: {} as never })).toThrow(/info/)
    expect(() => idemLogging({ logger: new FakeLogger(), level: 'trace' as never })).toThrow(RangeError)
    // console has the shape: (object, message) at every level.
    expect(() => idemLogging({ logger: console })).not.toThrow()
  })

  it('stops every watch on close', async () => {
    const { logger, logging } = rig()
    const idem = new Idempotency({ store: new MemoryStore() })
    logging.watch(idem)
    logging.close()
    await idem.run({ key: 'k1', payload: 1 }, () => 'ran')
    await idem.run({ key: 'k1', payload: 2 }, () => 'ran').catch(() => undefined)
    expect(logger.calls).toEqual([])
    expect(() => logging.watch(idem)).toThrow(/closed/)
  })
})
