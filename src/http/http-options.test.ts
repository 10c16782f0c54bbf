// The one options object of every HTTP adapter, its deprecated forms, and the errors and problem
// responses derived from error codes.

import Fastify from 'fastify'
import { describe, expect, it, vi } from 'vitest'
import { ErrorCode, Idempotency, IdempotencyError, MemoryStore } from '../index.js'
import { problemResponse } from './core/problems.js'
import { fastifyIdempotency } from './fastify/index.js'
import { HttpIdempotency, Problem, RequestTooLargeError } from './index.js'

const deprecations = () => {
  const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
  return {
    messages: () =>
      spy.mock.calls
        .filter(([, options]) => (options as { code?: string } | undefined)?.code === 'IDEM_DEPRECATED')
        .map(([message]) => String(message)),
    restore: () => spy.mockRestore(),
  }
}

describe('HttpIdempotency options', () => {
  it('takes an Idempotency as `idem`, and keeps it (its store, events and limits)', () => {
    const store = new MemoryStore()
    const idem = new Idempotency({ store })
    const http = new HttpIdempotency({ idem })
    expect(http.idem).toBe(idem)
    expect(new HttpIdempotency({ idem, store }).idem).toBe(idem)
  })

  it('still takes `idempotency`, with one deprecation warning naming `idem`', () => {
    const warnings = deprecations()
    try {
      const idem = new Idempotency({ store: new MemoryStore() })
      expect(new HttpIdempotency({ idempotency: idem }).idem).toBe(idem)
      expect(new HttpIdempotency({ idempotency: idem }).idempotency).toBe(idem)
      expect(warnings.messages()).toEqual([
        expect.stringMatching(/`idempotency` is deprecated: use the option `idem`/),
        expect.stringMatching(/HttpIdempotency#idempotency is deprecated: use HttpIdempotency#idem/),
      ])
    } finally {
      warnings.restore()
    }
  })

  it('refuses a missing store, and a store that is not the idem’s, naming the options', () => {
    expect(() => new HttpIdempotency({})).toThrow(/\{ store \} or \{ idem \}/)
    expect(() => new HttpIdempotency(undefined as never)).toThrow(TypeError)
    const idem = new Idempotency({ store: new MemoryStore() })
    expect(() => new HttpIdempotency({ idem, store: new MemoryStore() })).toThrow(/not both/)
    expect(() => new HttpIdempotency({ store: new MemoryStore(), maxRequestBytes: 0 })).toThrow(
      /maxRequestBytes must be a positive integer/,
    )
  })

  it("follows a store's lower limit by default, and refuses a response limit above it", () => {
    const store = new MemoryStore({ maxResultBytes: 1000 })
    expect(new HttpIdempotency({ store }).maxResponseBytes).toBe(1000)
    expect(() => new HttpIdempotency({ store, maxResponseBytes: 1001 })).toThrow(
      /maxResponseBytes \(1001\) is above the store's maxResultBytes \(1000\)/,
    )
  })

  it("refuses a response limit above the idem's own, when it declares one", () => {
    const idem = new Idempotency({ store: new MemoryStore(), maxResultBytes: 500 })
    expect(() => new HttpIdempotency({ idem, maxResponseBytes: 501 })).toThrow(/the idem's maxResultBytes \(500\)/)
    expect(new HttpIdempotency({ idem }).maxResponseBytes).toBe(500)
  })
})

describe('fastifyIdempotency options', () => {
  const post = async (register: (app: ReturnType<typeof Fastify>) => Promise<unknown>) => {
    const app = Fastify()
    await register(app)
    app.post('/', async () => ({ ok: true }))
    const response = await app.inject({ method: 'POST', url: '/', payload: {} })
    await app.close()
    return response
  }

  it('takes an HttpIdempotency itself, as every adapter does', async () => {
    const http = new HttpIdempotency({ store: new MemoryStore(), required: true })
    expect((await post((app) => app.register(fastifyIdempotency, http))).statusCode).toBe(400)
  })

  it('still takes `{ core }`, with one deprecation warning', async () => {
    const warnings = deprecations()
    try {
      const http = new HttpIdempotency({ store: new MemoryStore(), required: true })
      expect((await post((app) => app.register(fastifyIdempotency, { core: http }))).statusCode).toBe(400)
      expect(warnings.messages()).toEqual([expect.stringMatching(/\{ core \}` is deprecated/)])
    } finally {
      warnings.restore()
    }
  })
})

describe('errors and problems', () => {
  it('makes RequestTooLargeError an IdempotencyError with a stable code and status', () => {
    const error = new RequestTooLargeError(10)
    expect(error).toBeInstanceOf(IdempotencyError)
    expect(error).toMatchObject({ code: ErrorCode.REQUEST_TOO_LARGE, status: 413, limit: 10 })
  })

  it("derives a problem's type, title and status from the error's code and status", () => {
    const response = problemResponse('urn:x:', new IdempotencyError(ErrorCode.MISSING_KEY, 'no key'))
    expect(response.status).toBe(400)
    expect(JSON.parse(Buffer.from(response.body).toString())).toEqual({
      type: 'urn:x:missing-key',
      title: 'Idempotency-Key is missing',
      status: 400,
      detail: 'no key',
    })
    expect(() => problemResponse('urn:x:', new IdempotencyError(ErrorCode.LEASE_LOST, 'lost'))).toThrow(TypeError)
    expect(Problem.RESPONSE_NOT_STORED).toEqual({
      slug: 'response-not-stored',
      status: 500,
      title: 'The request was executed but its response was not stored',
    })
    expect(Problem.KEY_REUSED.status).toBe(422)
  })
})
