// What never reaches a log: payloads, results, keys, principals, an error's other fields; and a
// logger that throws never changes an outcome.

import { describe, expect, it } from 'vitest'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { Delivery } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { ErrorCode } from '../../errors.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import type { HttpRequest } from '../../http/core/types.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemLogging, type Logger } from './index.js'

const MARKER = 'PAYLOAD-MARKER-7f3a9c'
const KEY = 'KEY-MARKER-2b81d4e0'
const SHORT_KEY = 'k7'
const PRINCIPAL = 'Bearer PRINCIPAL-MARKER-c0ffee'

/** A store whose begin fails once, with an error carrying data besides its message. */
class LeakyFailingStore extends MemoryStore {
  #fail = 0
  failNext(): void {
    this.#fail++
  }
  override async begin(...args: Parameters<MemoryStore['begin']>): ReturnType<MemoryStore['begin']> {
    if (this.#fail > 0) {
      this.#fail--
      throw Object.assign(new Error(`insert failed for "${args[0]}"`), { code: '23505', parameters: [MARKER] })
    }
    return super.begin(...args)
  }
}

const delivery = (key: string, payload: unknown): Delivery<unknown> => ({
  key,
  payload,
  deliveryCount: 1,
  ack: async () => {},
  retry: async () => {},
  deadLetter: async () => {},
})

const request = (body: unknown): HttpRequest => ({
  method: 'POST',
  url: '/orders',
  route: '/orders',
  headers: { 'content-type': 'application/json', authorization: PRINCIPAL, 'idempotency-key': KEY },
  body: JSON.stringify(body),
})

/** Every event idem/logging reports, each carrying the markers where they could leak. */
async function scenario(logger: Logger, revealKeys = false) {
  const logging = idemLogging({ logger, level: 'debug', revealKeys })
  const outcomes: unknown[] = []
  const settle = async (p: Promise<unknown>) => {
    outcomes.push(
      await p.then(
        (v) => v,
        (e: { code?: string; name?: string }) => e.code ?? e.name,
      ),
    )
  }

  const store = new LeakyFailingStore()
  const idem = new Idempotency({ store })
  logging.watch(idem)
  const payload = { card: MARKER }
  const result = () => ({ receipt: MARKER })
  // executed, replayed, mismatch (key long and short)
  await settle(idem.run({ key: KEY, payload }, result))
  await settle(idem.run({ key: KEY, payload }, result))
  await settle(idem.run({ key: KEY, payload: { card: `${MARKER}-2` } }, result))
  await settle(idem.run({ key: SHORT_KEY, payload }, result))
  await settle(idem.run({ key: SHORT_KEY, payload: { card: `${MARKER}-2` } }, result))
  // released, with an error carrying the payload in its fields
  const failing = Object.assign(new Error('upstream declined'), { payload, response: { body: MARKER } })
  await settle(idem.run({ key: `${KEY}-r`, payload }, () => Promise.reject(failing)))
  // store errors, failing closed then open, whose error quotes the record id and carries parameters
  store.failNext()
  await settle(idem.run({ key: `${KEY}-s`, payload }, result))
  store.failNext()
  await settle(idem.run({ key: `${KEY}-o`, payload, failOpen: true }, result))
  // lease lost
  await settle(
    idem.run({ key: `${KEY}-l`, payload, lease: '10s' }, async () => {
      await store.delete(idem.recordId(`${KEY}-l`))
      await idem.run({ key: `${KEY}-l`, payload }, result)
      return result()
    }),
  )

  // a consumer: a mismatch dead-lettered (its reason quotes the key), a final error with fields
  const consumer = new IdempotentConsumer<unknown>({
    idem,
    scope: 'orders',
    handler: (p) => {
      if ((p as { fail?: boolean }).fail) throw Object.assign(new Error('card declined'), { payload: p })
      return result()
    },
    isFinal: (error) => (error as Error).message === 'card declined',
  })
  logging.watch(consumer, { name: 'orders' })
  await settle(consumer.handle(delivery(KEY, payload)))
  await settle(consumer.handle(delivery(KEY, { card: `${MARKER}-3` })))
  await settle(consumer.handle(delivery(`${KEY}-f`, { fail: true, card: MARKER })))

  // HTTP: a principal, a client's key, a body
  const http = new HttpIdempotency({ store: new MemoryStore() })
  logging.watch(http)
  const first = await http.decide(request({ card: MARKER }))
  if (first.action === 'proceed') await first.capture.end(201, [])
  const second = await http.decide(request({ card: `${MARKER}-4` }))
  outcomes.push(second.action === 'respond' ? second.response.status : second.action)
  return outcomes
}

class Capture implements Logger {
  readonly calls: unknown[][] = []
  debug(...args: unknown[]): void {
    this.calls.push(['debug', ...args])
  }
  info(...args: unknown[]): void {
    this.calls.push(['info', ...args])
  }
  warn(...args: unknown[]): void {
    this.calls.push(['warn', ...args])
  }
  error(...args: unknown[]): void {
    this.calls.push(['error', ...args])
  }
}

describe('what idem/logging writes', () => {
  it('never holds a payload, a result, a key, a principal or an error object', async () => {
    const logger = new Capture()
    await scenario(logger)
    const events = logger.calls.map((call) => (call[1] as { event: string }).event)
    expect(new Set(events)).toEqual(
      new Set([
        'idem.mismatch',
        'idem.released',
        'idem.store_error',
        'idem.fail_open',
        'idem.lease_lost',
        'idem.consumer.dead_lettered',
      ]),
    )
    expect(events.filter((e) => e === 'idem.mismatch')).toHaveLength(4) // two keys, the consumer's, the HTTP one
    const written = JSON.stringify(logger.calls)
    expect(written).not.toContain('MARKER-7f3a9c')
    expect(written).not.toContain('KEY-MARKER')
    expect(written).not.toContain(`"${SHORT_KEY}"`)
    expect(written).not.toContain('PRINCIPAL-MARKER')
    // Not even the principal's hash: the scope is the route's label.
    const principalHash = written.match(/\|[A-Za-z0-9_-]{27}\|/)
    expect(principalHash).toBeNull()
    expect(written).toContain('"scope":"http|POST /orders"')
    // The store error is told by its name, message and code, the record id taken out.
    expect(written).toContain('"message":"insert failed for \\"<record>\\"","code":"23505"')
  })

  it('holds the raw key and record id only with revealKeys', async () => {
    const logger = new Capture()
    await scenario(logger, true)
    const written = JSON.stringify(logger.calls)
    expect(written).toContain(`"key":"${KEY}"`)
    expect(written).toContain(`"recordId":"`)
    expect(written).not.toContain('MARKER-7f3a9c')
  })
})

describe('a logger that throws', () => {
  it('never changes an outcome', async () => {
    const throwing: Logger = {
      debug: () => {
        throw new Error('log sink down')
      },
      info: () => {
        throw new Error('log sink down')
      },
      warn: () => {
        throw new Error('log sink down')
      },
      error: () => {
        throw new Error('log sink down')
      },
    }
    const silent = new Capture()
    const expected = await scenario(silent)
    const outcomes = await scenario(throwing)
    expect(outcomes).toEqual(expected)
    expect(outcomes).toContain(ErrorCode.FINGERPRINT_MISMATCH)
    expect(outcomes.at(-1)).toBe(422)
    expect(outcomes).toContainEqual({ status: 'executed', value: { receipt: MARKER }, failedOpen: true })
    expect(outcomes).toContainEqual(expect.objectContaining({ outcome: 'dead_lettered' }))
  })
})
