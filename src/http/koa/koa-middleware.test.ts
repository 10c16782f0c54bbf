// What is Koa's own in idem/koa, on Koa 3 and Koa 2 over a real socket: where the body comes
// from (a body parser before the middleware, after it, none), each kind of ctx.body as it is
// sent and replayed, thrown errors, ctx.respond = false, and options that cannot work.

import { randomUUID } from 'node:crypto'
import { createServer, IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { bodyParser } from '@koa/bodyparser'
import Koa from 'koa'
import Koa2 from 'koa2'
import { afterEach, describe, expect, it } from 'vitest'
import { expectProblem, type Sent, send } from '../../../test/support/http/http-suite.test-helper.js'
import { listening, type RunningApp } from '../../../test/support/http/test-apps.test-helper.js'
import { MemoryStore } from '../../index.js'
import { HttpIdempotency, koaIdempotency } from './index.js'

type KoaClass = typeof Koa

const running: RunningApp[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()))
})

async function serve(app: Koa): Promise<string> {
  const started = await listening(createServer(app.callback()))
  running.push(started)
  return started.url
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer))
  return Buffer.concat(chunks)
}

/** An app whose errors are kept (and not logged), with `setup` mounting the middleware and the rest. */
function appOn(KoaClass: KoaClass, setup: (app: Koa) => void): { app: Koa; errors: unknown[] } {
  const app = new KoaClass()
  const errors: unknown[] = []
  app.on('error', (error: { headerSent?: boolean }, ctx?: Koa.Context) => {
    errors.push(error)
    if (error.headerSent) ctx?.res.destroy()
  })
  setup(app)
  return { app, errors }
}

const memory = () => new MemoryStore()

/** Sends the same request twice: the second must be the replay of the first. */
async function twice(url: string, path: string, body: unknown = {}): Promise<[Sent, Sent]> {
  const key = randomUUID()
  const first = await send(url, path, { key, body })
  const again = await send(url, path, { key, body })
  return [first, again]
}

function expectReplay(first: Sent, again: Sent): void {
  expect(again.headers.get('idempotent-replayed')).toBe('true')
  expect(again.status).toBe(first.status)
  expect(again.bytes.equals(first.bytes)).toBe(true)
  expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'))
}

describe('koaIdempotency options', () => {
  it('refuses options without a store with a TypeError that says what is needed', () => {
    expect(() => koaIdempotency(undefined as never)).toThrow(TypeError)
    expect(() => koaIdempotency(undefined as never)).toThrow(/options object with a store or an idem/)
    expect(() => koaIdempotency({} as never)).toThrow(/needs a store or an idem/)
    expect(() => koaIdempotency({ store: memory(), maxRequestBytes: 0 })).toThrow(/maxRequestBytes/)
  })

  it('answers app.use(koaIdempotency), without the options, with a TypeError that shows the call', async () => {
    const { app, errors } = appOn(Koa, (app) => {
      app.use(koaIdempotency as never)
      app.use((ctx) => {
        ctx.body = 'ran'
      })
    })
    const url = await serve(app)
    expect((await send(url, '/x', { key: randomUUID(), body: {} })).status).toBe(500)
    expect(errors).toEqual([expect.any(TypeError)])
    expect(String(errors[0])).toMatch(/app\.use\(koaIdempotency\(\{ store \}\)\)/)
  })

  it('takes an HttpIdempotency shared with other adapters', async () => {
    const http = new HttpIdempotency({ store: memory(), required: true })
    let runs = 0
    const { app } = appOn(Koa, (app) => {
      app.use(koaIdempotency(http))
      app.use((ctx) => {
        ctx.body = { runs: ++runs }
      })
    })
    const url = await serve(app)
    const [first, again] = await twice(url, '/shared')
    expectReplay(first, again)
    expect(runs).toBe(1)
    expectProblem(await send(url, '/shared', { body: {} }), 400, 'missing-key')
  })
})

describe.each([
  ['Koa 3', Koa],
  ['Koa 2', Koa2 as unknown as KoaClass],
])('%s', (_name, KoaClass) => {
  describe('the body', () => {
    it('with a parser before: fingerprints its raw body, not what it parsed', async () => {
      let runs = 0
      const { app } = appOn(KoaClass, (app) => {
        app.use(bodyParser())
        app.use(koaIdempotency({ store: memory() }))
        app.use((ctx) => {
          ctx.body = { runs: ++runs, parsed: ctx.request.body }
        })
      })
      const url = await serve(app)
      const form = (key: string, text: string) =>
        send(url, '/form', { key, body: Buffer.from(text), contentType: 'application/x-www-form-urlencoded' })
      const key = randomUUID()
      const first = await form(key, 'a=1&b=2')
      expect(JSON.parse(first.text)).toEqual({ runs: 1, parsed: { a: '1', b: '2' } })
      expect((await form(key, 'a=1&b=2')).headers.get('idempotent-replayed')).toBe('true')
      // The same fields in another order parse alike, but they are other bytes.
      expectProblem(await form(key, 'b=2&a=1'), 422, 'key-reused')
      expect(runs).toBe(1)
    })

    it('with a parser before that keeps no raw text: fingerprints what it parsed, as canonical JSON', async () => {
      let runs = 0
      const { app } = appOn(KoaClass, (app) => {
        app.use(async (ctx, next) => {
          ctx.request.body = JSON.parse((await readAll(ctx.req)).toString())
          await next()
        })
        app.use(koaIdempotency({ store: memory() }))
        app.use((ctx) => {
          ctx.body = { runs: ++runs }
        })
      })
      const url = await serve(app)
      const key = randomUUID()
      expect((await send(url, '/parsed', { key, body: { a: 1, b: [2] } })).status).toBe(200)
      const again = await send(url, '/parsed', { key, body: { b: [2], a: 1 } })
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expectProblem(await send(url, '/parsed', { key, body: { a: 1, b: [3] } }), 422, 'key-reused')
      expect(runs).toBe(1)
    })

    it('with a parser before that skips the content type: reads the body itself and leaves it readable', async () => {
      const seen: Buffer[] = []
      const { app } = appOn(KoaClass, (app) => {
        app.use(bodyParser())
        app.use(koaIdempotency({ store: memory() }))
        app.use(async (ctx) => {
          seen.push(await readAll(ctx.req))
          ctx.body = { bytes: seen.at(-1)?.length }
        })
      })
      const url = await serve(app)
      const key = randomUUID()
      const body = Buffer.from([0, 1, 2, 255, 254])
      expect((await send(url, '/bin', { key, body })).status).toBe(200)
      expect(seen).toEqual([body])
      // @koa/bodyparser left {} in ctx.request.body for this type: other bytes are another request.
      expectProblem(await send(url, '/bin', { key, body: Buffer.from([9]) }), 422, 'key-reused')
      expect((await send(url, '/bin', { key, body })).headers.get('idempotent-replayed')).toBe('true')
      expect(seen).toHaveLength(1)
    })

    it('with a parser after: the parser reads the copy the middleware leaves in ctx.req', async () => {
      const seen: unknown[] = []
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use(bodyParser())
        app.use((ctx) => {
          seen.push([ctx.request.body, ctx.request.rawBody])
          ctx.status = 201
          ctx.body = { ok: true }
        })
      })
      const url = await serve(app)
      const key = randomUUID()
      expect((await send(url, '/json', { key, body: { b: 2, a: 1 } })).status).toBe(201)
      expect(seen).toEqual([[{ b: 2, a: 1 }, '{"b":2,"a":1}']])
      // JSON is fingerprinted canonically: the same object with its keys reordered is a retry.
      const again = await send(url, '/json', { key, body: { a: 1, b: 2 } })
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expectProblem(await send(url, '/json', { key, body: { a: 1, b: 3 } }), 422, 'key-reused')
      expect(seen).toHaveLength(1)
    })

    it('without a parser: ctx.req still gives the exact bytes, and is still the request', async () => {
      const seen: Array<{ bytes: Buffer; raw: unknown; same: boolean; url: string; method: string; header: unknown }> =
        []
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use(async (ctx) => {
          const req = ctx.req
          seen.push({
            bytes: await readAll(req),
            raw: ctx.request.rawBody,
            same: ctx.request.req === req && req instanceof IncomingMessage && ctx.path === '/raw',
            url: req.url ?? '',
            method: req.method ?? '',
            header: req.headers['x-custom'],
          })
          ctx.body = 'ok'
        })
      })
      const url = await serve(app)
      const binary = Buffer.from([0xff, 0xfe, 0x00, 0x41])
      const headers = { 'x-custom': 'yes' }
      await send(url, '/raw?q=1', { key: randomUUID(), body: binary, headers })
      await send(url, '/raw', { key: randomUUID(), body: { text: 'héllo' } })
      expect(seen[0]).toEqual({
        bytes: binary,
        raw: undefined,
        same: true,
        url: '/raw?q=1',
        method: 'POST',
        header: 'yes',
      })
      // Text is also left as ctx.request.rawBody, as @koa/bodyparser leaves it.
      expect(seen[1]?.raw).toBe('{"text":"héllo"}')
      expect(seen[1]?.bytes.toString()).toBe('{"text":"héllo"}')
    })

    it('leaves the request untouched when it does not apply (no key, another method)', async () => {
      const requests: unknown[] = []
      const { app } = appOn(KoaClass, (app) => {
        app.use(async (ctx, next) => {
          requests.push(ctx.req)
          await next()
        })
        app.use(koaIdempotency({ store: memory() }))
        app.use(async (ctx) => {
          ctx.body = { same: requests.at(-1) === ctx.req, text: (await readAll(ctx.req)).toString() }
        })
      })
      const url = await serve(app)
      expect(JSON.parse((await send(url, '/a', { body: { n: 1 } })).text)).toEqual({ same: true, text: '{"n":1}' })
      const put = await send(url, '/a', { method: 'PUT', key: randomUUID(), body: { n: 2 } })
      expect(JSON.parse(put.text)).toEqual({ same: true, text: '{"n":2}' })
    })
  })

  describe('ctx.body, as sent and as replayed', () => {
    const bodies: Array<[string, (ctx: Koa.Context) => void, { status: number; text: string; type: string | null }]> = [
      [
        'a string',
        (ctx) => {
          ctx.body = 'plain ✓'
        },
        { status: 200, text: 'plain ✓', type: 'text/plain; charset=utf-8' },
      ],
      [
        'HTML',
        (ctx) => {
          ctx.body = '<p>hi</p>'
        },
        { status: 200, text: '<p>hi</p>', type: 'text/html; charset=utf-8' },
      ],
      [
        'a Buffer',
        (ctx) => {
          ctx.body = Buffer.from([1, 2, 3])
        },
        { status: 200, text: '\u0001\u0002\u0003', type: 'application/octet-stream' },
      ],
      [
        'a JSON object with a status',
        (ctx) => {
          ctx.status = 201
          ctx.body = { id: 7, tags: ['a'] }
        },
        { status: 201, text: '{"id":7,"tags":["a"]}', type: 'application/json; charset=utf-8' },
      ],
      [
        'a stream',
        (ctx) => {
          ctx.type = 'text/csv'
          ctx.body = Readable.from(['a,b\n', '1,2\n'])
        },
        { status: 200, text: 'a,b\n1,2\n', type: 'text/csv; charset=utf-8' },
      ],
      [
        'null (204)',
        (ctx) => {
          ctx.body = null
        },
        { status: 204, text: '', type: null },
      ],
      [
        'only a status',
        (ctx) => {
          ctx.status = 202
        },
        { status: 202, text: 'Accepted', type: 'text/plain; charset=utf-8' },
      ],
      [
        'a status after a null body',
        (ctx) => {
          ctx.body = null
          ctx.status = 200
        },
        { status: 200, text: '', type: null },
      ],
      ['no route (404)', () => {}, { status: 404, text: 'Not Found', type: 'text/plain; charset=utf-8' }],
    ]

    it.each(bodies)('%s', async (_kind, handler, expected) => {
      let runs = 0
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use((ctx) => {
          runs++
          handler(ctx)
        })
      })
      const url = await serve(app)
      const [first, again] = await twice(url, '/body')
      expect({ status: first.status, text: first.text, type: first.headers.get('content-type') }).toEqual(expected)
      expectReplay(first, again)
      expect(runs).toBe(1)
    })

    it.each([
      [
        'a body in one piece',
        (ctx: Koa.Context) => {
          ctx.body = { done: true }
        },
      ],
      [
        'a stream',
        (ctx: Koa.Context) => {
          ctx.body = Readable.from(['str', 'eam'])
        },
      ],
    ])('holds %s until the store has it: a retry the moment it arrives is a replay', async (_kind, handler) => {
      const store = memory()
      // complete() resolves 150 ms late: a response that did not wait for it would let the retry see the key running.
      const slow = new Proxy(store, {
        get(target, property) {
          if (property === 'complete') {
            return (...args: Parameters<MemoryStore['complete']>) =>
              new Promise((resolve) => setTimeout(resolve, 150)).then(() => target.complete(...args))
          }
          const value = Reflect.get(target, property, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: slow }))
        app.use(handler)
      })
      const url = await serve(app)
      const [first, again] = await twice(url, '/held')
      expect(first.status).toBe(200)
      expectReplay(first, again)
    })

    it('keeps the Content-Length of a stream body', async () => {
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use((ctx) => {
          ctx.body = Readable.from([Buffer.from('12345')])
          ctx.length = 5
        })
      })
      const url = await serve(app)
      const [first, again] = await twice(url, '/len')
      expect(first.headers.get('content-length')).toBe('5')
      expect(first.text).toBe('12345')
      expectReplay(first, again)
    })
  })

  describe('errors and bypasses', () => {
    it('releases the key when the handler throws, even an HTTP error: Koa answers it, a retry runs again', async () => {
      let runs = 0
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use((ctx) => {
          runs++
          ctx.throw(409, 'conflict here')
        })
      })
      const url = await serve(app)
      const key = randomUUID()
      const first = await send(url, '/t', { key, body: {} })
      expect([first.status, first.text]).toEqual([409, 'conflict here'])
      const again = await send(url, '/t', { key, body: {} })
      expect(again.headers.get('idempotent-replayed')).toBeNull()
      expect(runs).toBe(2)
    })

    it('stores the 4xx that an error-handling middleware mounted after it makes of a thrown error', async () => {
      let runs = 0
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use(async (ctx, next) => {
          try {
            await next()
          } catch (error) {
            ctx.status = (error as { status?: number }).status ?? 500
            ctx.body = { error: (error as Error).message }
          }
        })
        app.use((ctx) => {
          runs++
          ctx.throw(422, 'invalid amount')
        })
      })
      const url = await serve(app)
      const [first, again] = await twice(url, '/v')
      expect([first.status, first.text]).toEqual([422, '{"error":"invalid amount"}'])
      expectReplay(first, again)
      expect(runs).toBe(1)
    })

    it('releases the key of a response that bypasses Koa (ctx.respond = false)', async () => {
      let runs = 0
      const { app } = appOn(KoaClass, (app) => {
        app.use(koaIdempotency({ store: memory() }))
        app.use((ctx) => {
          runs++
          ctx.respond = false
          ctx.res.writeHead(200, { 'content-type': 'text/plain' }).end('raw')
        })
      })
      const url = await serve(app)
      const key = randomUUID()
      expect((await send(url, '/r', { key, body: {} })).text).toBe('raw')
      const again = await send(url, '/r', { key, body: {} })
      expect(again.text).toBe('raw')
      expect(again.headers.get('idempotent-replayed')).toBeNull()
      expect(runs).toBe(2)
    })

    it('sends replays and problems through the middleware mounted before it', async () => {
      const { app } = appOn(KoaClass, (app) => {
        app.use(async (ctx, next) => {
          await next()
          ctx.set('x-outer', `after ${ctx.status}`)
        })
        app.use(koaIdempotency({ store: memory(), required: true }))
        app.use((ctx) => {
          ctx.status = 201
          ctx.body = { ok: 1 }
        })
      })
      const url = await serve(app)
      const [first, again] = await twice(url, '/o')
      expectReplay(first, again)
      expect(again.headers.get('x-outer')).toBe('after 201')
      const missing = await send(url, '/o', { body: {} })
      expectProblem(missing, 400, 'missing-key')
      expect(missing.headers.get('x-outer')).toBe('after 400')
    })
  })
})

describe('Koa 3 web bodies', () => {
  const bodies: Array<[string, () => unknown, string]> = [
    ['a Blob', () => new Blob(['blob ✓'], { type: 'text/plain' }), 'text/plain; charset=utf-8'],
    [
      'a web ReadableStream',
      () =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(Buffer.from('web '))
            controller.enqueue(Buffer.from('stream'))
            controller.close()
          },
        }),
      'application/octet-stream',
    ],
    ['a Response', () => new Response('from a Response', { headers: { 'content-type': 'text/x-r' } }), 'text/x-r'],
  ]

  it.each(bodies)('%s is sent and replayed as Koa 3 sends it', async (_kind, body, type) => {
    let runs = 0
    const { app } = appOn(Koa, (app) => {
      app.use(koaIdempotency({ store: memory() }))
      app.use((ctx) => {
        runs++
        ctx.body = body()
      })
    })
    const url = await serve(app)
    const [first, again] = await twice(url, '/web')
    expect(first.status).toBe(200)
    expect(first.text).toMatch(/^(blob ✓|web stream|from a Response)$/)
    expect(first.headers.get('content-type')).toBe(type)
    expectReplay(first, again)
    expect(runs).toBe(1)
  })
})
