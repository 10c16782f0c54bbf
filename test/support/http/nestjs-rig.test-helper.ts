// The behavioural suite's application written for NestJS, on its Express platform and on its
// Fastify platform: one controller (decorators applied as plain calls, since the project compiles
// without experimentalDecorators), `@Idempotent()` on the class, IdemModule over the suite's core.

import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import {
  All,
  Body,
  Controller,
  HttpException,
  type INestApplication,
  Inject,
  Module,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import type { HttpIdempotency } from '../../../src/http/index.js'
import { IdemModule, Idempotent } from '../../../src/http/nestjs/index.js'
import { AppState, decode, type FrameworkRig, handle, type RunningApp } from './test-apps.test-helper.js'

/** The endpoints of the suite's application, each a route of its own. */
export const ENDPOINTS = ['orders', 'files', 'text', 'slow', 'flaky', 'missing', 'crash', 'throw', 'big', 'large']

/** Express's `res` or Fastify's reply: status and headers set the platform's way. */
interface PlatformResponse {
  status?: (code: number) => unknown
  code?: (code: number) => unknown
  setHeader?: (name: string, value: string) => unknown
  header?: (name: string, value: string) => unknown
}

function setStatus(res: PlatformResponse, status: number): void {
  if (res.code !== undefined) res.code(status)
  else res.status?.(status)
}

function setHeader(res: PlatformResponse, name: string, value: string): void {
  if (res.header !== undefined && res.code !== undefined) res.header(name, value)
  else res.setHeader?.(name, value)
}

interface SuiteRequest {
  url: string
  originalUrl?: string
  headers: Record<string, string | undefined>
}

/** The suite's controller, in Nest's idiom: values returned, HttpExceptions thrown, files streamed. */
class SuiteController {
  constructor(readonly state: AppState) {}

  async endpoint(req: SuiteRequest, res: PlatformResponse, body: unknown): Promise<unknown> {
    const url = new URL(req.originalUrl ?? req.url, 'http://localhost')
    const data = Buffer.isBuffer(body) ? decode(body, req.headers['content-type']) : body
    const reply = await handle(this.state, url.pathname, url.searchParams, data)
    if ('throw' in reply) throw reply.throw
    if ('crash' in reply) {
      const stream = new Readable({ read() {} })
      stream.push(reply.crash)
      setTimeout(() => stream.destroy(new Error('crashed mid-response')), 20)
      return new StreamableFile(stream, { type: 'text/plain' }).setErrorLogger(() => {})
    }
    if (reply.status >= 500) throw new HttpException(JSON.parse(String(reply.body)), reply.status)
    setStatus(res, reply.status)
    for (const [name, value] of Object.entries(reply.headers)) setHeader(res, name, value)
    if (typeof reply.body === 'string') return reply.body
    return new StreamableFile(Buffer.from(reply.body), { type: reply.headers['content-type'] })
  }
}

Controller()(SuiteController)
Inject(AppState)(SuiteController, undefined, 0)
const descriptor = Object.getOwnPropertyDescriptor(SuiteController.prototype, 'endpoint') as PropertyDescriptor
All(ENDPOINTS)(SuiteController.prototype, 'endpoint', descriptor)
Req()(SuiteController.prototype, 'endpoint', 0)
Res({ passthrough: true })(SuiteController.prototype, 'endpoint', 1)
Body()(SuiteController.prototype, 'endpoint', 2)
Idempotent()(SuiteController)

/** A module of the suite's controller over `core`, and `state` for the controller. */
function suiteModule(core: HttpIdempotency, state: AppState): new () => unknown {
  class SuiteModule {}
  Module({
    imports: [IdemModule.forRoot(core)],
    controllers: [SuiteController],
    providers: [{ provide: AppState, useValue: state }],
  })(SuiteModule)
  return SuiteModule
}

async function started(app: INestApplication): Promise<RunningApp> {
  await app.listen(0, '127.0.0.1')
  const server = app.getHttpServer() as import('node:http').Server
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await app.close()
    },
  }
}

export const nestExpressRig: FrameworkRig = {
  name: 'NestJS (Express)',
  // Nest's JSON parser has its own limit; bodies it does not parse are read by Idem (413 problem).
  frameworkBodyLimit: false,
  start: async (core, state) => {
    const app = await NestFactory.create(suiteModule(core, state), new ExpressAdapter(), { logger: false })
    return started(app)
  },
}

export const nestFastifyRig: FrameworkRig = {
  name: 'NestJS (Fastify)',
  frameworkBodyLimit: true,
  start: async (core, state, bodyLimit) => {
    const adapter = new FastifyAdapter({ bodyLimit })
    adapter.getInstance().addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    const app = await NestFactory.create<NestFastifyApplication>(suiteModule(core, state), adapter, { logger: false })
    return started(app)
  },
}

export const NEST_RIGS: readonly FrameworkRig[] = [nestExpressRig, nestFastifyRig]
