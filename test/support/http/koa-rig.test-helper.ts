// The shared test application on Koa 3 (`koa`) and Koa 2 (`koa2`), for the behavioural suite:
// the same endpoints as test-apps.test-helper.ts, in Koa's idiom (ctx.status and ctx.body, JSON
// as an object, large bodies as streams), with @koa/bodyparser before or after the middleware,
// or none, so that each way of getting the body is run.

import { createServer } from 'node:http'
import { Readable } from 'node:stream'
import { bodyParser } from '@koa/bodyparser'
import Koa from 'koa'
import Koa2 from 'koa2'
import { koaIdempotency } from '../../../src/http/koa/index.js'
import { type AppState, decode, type FrameworkRig, handle, listening } from './test-apps.test-helper.js'

/** Where the body parser goes: before the middleware, after it, or nowhere (the handler reads ctx.req). */
export type ParserPlace = 'before' | 'after' | 'none'

type KoaClass = typeof Koa

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer))
  return Buffer.concat(chunks)
}

/** The body as the shared endpoints take it: parsed JSON, or the byte count of anything else. */
async function bodyOf(ctx: Koa.Context): Promise<unknown> {
  const type = ctx.get('content-type')
  const parsed = (ctx.request as { body?: unknown }).body
  if (type.startsWith('application/json') && parsed !== undefined) return parsed
  return decode(await readAll(ctx.req), type)
}

/** The shared application on `KoaClass`, with the body parser in `place`. */
export function createKoaApp(
  KoaClass: KoaClass,
  core: Parameters<typeof koaIdempotency>[0],
  state: AppState,
  place: ParserPlace,
): Koa {
  const app = new KoaClass()
  // A broken stream body leaves a Koa 2 connection open once its headers are out: cut it, as
  // Express's default handler does (Koa 3 cuts it itself). Listening also keeps Koa's log quiet.
  app.on('error', (error: { headerSent?: boolean }, ctx?: Koa.Context) => {
    if (error.headerSent) ctx?.res.destroy()
  })
  if (place === 'before') app.use(bodyParser())
  app.use(koaIdempotency(core))
  if (place === 'after') app.use(bodyParser())
  app.use(async (ctx) => {
    const reply = await handle(state, ctx.path, new URLSearchParams(ctx.querystring), await bodyOf(ctx))
    if ('throw' in reply) throw reply.throw
    if ('crash' in reply) {
      const stream = new Readable({ read() {} })
      stream.push(reply.crash)
      setTimeout(() => stream.destroy(new Error('crashed mid-response')), 20)
      ctx.status = 200
      ctx.type = 'text/plain'
      ctx.body = stream
      return
    }
    ctx.status = reply.status
    ctx.set(reply.headers)
    const endpoint = ctx.path.slice(1)
    if (reply.headers['content-type'] === 'application/json') ctx.body = JSON.parse(String(reply.body))
    else if (endpoint === 'big' || endpoint === 'large') ctx.body = Readable.from([Buffer.from(reply.body)])
    else ctx.body = typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body)
  })
  return app
}

export function koaRig(name: string, KoaClass: KoaClass, place: ParserPlace): FrameworkRig {
  return {
    name,
    frameworkBodyLimit: false,
    start: (core, state) => listening(createServer(createKoaApp(KoaClass, core, state, place).callback())),
  }
}

/** Koa 3 with the body parser before the middleware, Koa 2 with it after: both ways, on both versions. */
export const koa3Rig: FrameworkRig = koaRig('Koa 3', Koa, 'before')
export const koa2Rig: FrameworkRig = koaRig('Koa 2', Koa2 as unknown as KoaClass, 'after')

export const KOA_RIGS: readonly FrameworkRig[] = [koa3Rig, koa2Rig]

/** Every version and parser place, for the Koa-specific cases. */
export const ALL_KOA_RIGS: readonly FrameworkRig[] = [
  koa3Rig,
  koaRig('Koa 3, parser after', Koa, 'after'),
  koaRig('Koa 3, no parser', Koa, 'none'),
  koa2Rig,
  koaRig('Koa 2, parser before', Koa2 as unknown as KoaClass, 'before'),
  koaRig('Koa 2, no parser', Koa2 as unknown as KoaClass, 'none'),
]
