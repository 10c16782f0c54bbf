// IdemModule, @Idempotent() and DI: forRootAsync over an imported provider, a service that runs
// idem.transaction on SQLite, per-route options on both platforms, allRoutes with an exemption,
// a global module, a principal from Nest's context. Decorators are applied as plain calls.

import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  Body,
  type CallHandler,
  type CanActivate,
  ConflictException,
  Controller,
  type ExecutionContext,
  type INestApplication,
  Inject,
  Injectable,
  Module,
  type NestInterceptor,
  Post,
  Put,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import Database from 'better-sqlite3'
import { timeout } from 'rxjs'
import { afterEach, describe, expect, it } from 'vitest'
import { Idempotency, type IdempotencyStore, MemoryStore } from '../../index.js'
import { fromBetterSqlite3, SqliteStore } from '../../stores/sqlite/index.js'
import { HttpIdempotency, IDEM, IDEM_HTTP, IdemModule, Idempotent } from './index.js'

/** Apply method decorators to `Class.prototype[name]`, last first, as decorator syntax does. */
function decorate(Class: { prototype: object }, name: string, ...decorators: MethodDecorator[]): void {
  const descriptor = Object.getOwnPropertyDescriptor(Class.prototype, name) as PropertyDescriptor
  for (const decorator of decorators.reverse()) decorator(Class.prototype, name, descriptor)
}

type Platform = 'express' | 'fastify'
const running: INestApplication[] = []
afterEach(async () => {
  for (const app of running.splice(0)) {
    ;(app.getHttpServer() as Server).closeAllConnections()
    await app.close()
  }
})

async function start(module: new () => unknown, platform: Platform = 'express'): Promise<string> {
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter()
  const app = await NestFactory.create(module, adapter, { logger: false, abortOnError: false })
  running.push(app)
  await app.listen(0, '127.0.0.1')
  return `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`
}

async function send(url: string, options: { key?: string; body?: unknown; method?: string; auth?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.key !== undefined) headers['idempotency-key'] = options.key
  if (options.auth !== undefined) headers.authorization = options.auth
  const response = await fetch(url, {
    method: options.method ?? 'POST',
    headers,
    body: JSON.stringify(options.body ?? {}),
  })
  const text = await response.text()
  return {
    status: response.status,
    text,
    replayed: response.headers.get('idempotent-replayed') === 'true',
    type: response.headers.get('content-type'),
  }
}

describe('IdemModule.forRootAsync and an injected service using idem.transaction on SQLite', () => {
  const DB = Symbol('db')

  class LedgerService {
    constructor(
      readonly idem: Idempotency,
      readonly db: Database.Database,
    ) {}

    /** The ledger row and Idem's record commit in one SQLite transaction. */
    async credit(key: string, entry: { account: string; cents: number }) {
      const outcome = await this.idem.transaction(fromBetterSqlite3(this.db), { key, payload: entry }, (tx) => {
        const { lastInsertRowid } = tx
          .prepare('INSERT INTO ledger (account, cents) VALUES (?, ?)')
          .run(entry.account, entry.cents)
        return { entry: Number(lastInsertRowid) }
      })
      return { ...outcome.value, status: outcome.status }
    }
  }
  Injectable()(LedgerService)
  Inject(Idempotency)(LedgerService, undefined, 0)
  Inject(DB)(LedgerService, undefined, 1)

  class DatabaseModule {}
  const db = new Database(':memory:')
  db.exec('CREATE TABLE ledger (id INTEGER PRIMARY KEY, account TEXT NOT NULL, cents INTEGER NOT NULL)')
  Module({ providers: [{ provide: DB, useValue: db }], exports: [DB] })(DatabaseModule)

  class LedgerController {
    constructor(readonly ledger: LedgerService) {}
    credit(body: { account: string; cents: number }) {
      return this.ledger.credit(randomUUID(), body)
    }
  }
  Controller('ledger')(LedgerController)
  Inject(LedgerService)(LedgerController, undefined, 0)

  it('makes the Idempotency from the factory, injectable by class and by token, and runs a transaction once per key', async () => {
    let made = 0
    class AppModule {}
    Module({
      imports: [
        DatabaseModule,
        IdemModule.forRootAsync({
          imports: [DatabaseModule],
          inject: [DB],
          useFactory: async (database: Database.Database) => {
            made++
            const store = new SqliteStore({ client: database })
            await store.ensureSchema()
            return { store, scope: 'api' }
          },
        }),
      ],
      providers: [LedgerService],
    })(AppModule)
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false })
    try {
      const idem = app.get(Idempotency)
      expect(idem).toBeInstanceOf(Idempotency)
      expect(app.get(IDEM)).toBe(idem)
      expect(app.get(HttpIdempotency).idem).toBe(idem)
      expect(app.get(IDEM_HTTP)).toBe(app.get(HttpIdempotency))
      expect(made).toBe(1)
      const ledger = app.get(LedgerService)
      const key = randomUUID()
      const first = await ledger.credit(key, { account: 'acc_1', cents: 500 })
      const again = await ledger.credit(key, { account: 'acc_1', cents: 500 })
      expect(first).toEqual({ entry: expect.any(Number), status: 'executed' })
      expect(again).toEqual({ entry: first.entry, status: 'replayed' })
      expect(db.prepare('SELECT count(*) AS n FROM ledger').get()).toEqual({ n: 1 })
      // Another payload under the same key is caught, inside the transaction: no row is written.
      await expect(ledger.credit(key, { account: 'acc_1', cents: 900 })).rejects.toMatchObject({
        code: 'FINGERPRINT_MISMATCH',
      })
      expect(db.prepare('SELECT count(*) AS n FROM ledger').get()).toEqual({ n: 1 })
    } finally {
      await app.close()
    }
  })
})

/** A controller with a route per per-route option, and a count of executions per route. */
function optionsApp(moduleOptions: Parameters<typeof IdemModule.forRoot>[0]) {
  const executions = new Map<string, number>()
  const count = (route: string) => {
    const n = (executions.get(route) ?? 0) + 1
    executions.set(route, n)
    return n
  }
  class OrdersController {
    plain(body: unknown) {
      return { route: 'plain', n: count('plain'), body }
    }
    strict(body: unknown) {
      return { route: 'strict', n: count('strict'), body }
    }
    replace(body: unknown) {
      return { route: 'replace', n: count('replace'), body }
    }
    fields(body: unknown) {
      return { route: 'fields', n: count('fields'), body }
    }
    short() {
      return { route: 'short', n: count('short') }
    }
    exempt() {
      return { route: 'exempt', n: count('exempt') }
    }
    conflict() {
      throw new ConflictException(`conflict ${count('conflict')}`)
    }
  }
  Controller('orders')(OrdersController)
  decorate(OrdersController, 'plain', Post('plain'), Idempotent())
  decorate(OrdersController, 'strict', Post('strict'), Idempotent({ required: true }))
  decorate(OrdersController, 'replace', Put('replace'), Idempotent())
  decorate(OrdersController, 'fields', Post('fields'), Idempotent({ fingerprintFields: ['amount'] }))
  decorate(OrdersController, 'short', Post('short'), Idempotent({ ttl: '300ms' }))
  decorate(OrdersController, 'exempt', Post('exempt'), Idempotent(false))
  decorate(OrdersController, 'conflict', Post('conflict'), Idempotent())
  for (const name of ['plain', 'strict', 'replace', 'fields']) Body()(OrdersController.prototype, name, 0)
  class AppModule {}
  Module({ imports: [IdemModule.forRoot(moduleOptions)], controllers: [OrdersController] })(AppModule)
  return { AppModule, executions }
}

describe.each<Platform>(['express', 'fastify'])('@Idempotent() per-route options on the %s platform', (platform) => {
  it('takes each route’s options over the module’s', async () => {
    const { AppModule, executions } = optionsApp({ store: new MemoryStore() })
    const base = `${await start(AppModule, platform)}/orders`

    // The module does not require a key; the strict route does.
    expect((await send(`${base}/plain`, { body: { a: 1 } })).status).toBe(201)
    const missing = await send(`${base}/strict`, { body: { a: 1 } })
    expect(missing.status).toBe(400)
    expect(missing.type).toBe('application/problem+json')
    expect(executions.get('strict')).toBeUndefined()

    // A PUT route decorated itself is covered, although the default methods are POST and PATCH.
    const key = randomUUID()
    const put = await send(`${base}/replace`, { key, method: 'PUT', body: { a: 1 } })
    const putAgain = await send(`${base}/replace`, { key, method: 'PUT', body: { a: 1 } })
    expect([put.status, putAgain.status, putAgain.replayed]).toEqual([200, 200, true])
    expect(putAgain.text).toBe(put.text)
    expect(executions.get('replace')).toBe(1)

    // Only `amount` is fingerprinted: another note is the same request, another amount is not.
    const fieldsKey = randomUUID()
    const first = await send(`${base}/fields`, { key: fieldsKey, body: { amount: 5, note: 'first try' } })
    const retry = await send(`${base}/fields`, { key: fieldsKey, body: { amount: 5, note: 'retry at 10:02' } })
    expect(retry.replayed).toBe(true)
    expect(retry.text).toBe(first.text)
    expect((await send(`${base}/fields`, { key: fieldsKey, body: { amount: 6 } })).status).toBe(422)
    expect(executions.get('fields')).toBe(1)

    // A short ttl: the stored response is gone after it, and the key runs again.
    const shortKey = randomUUID()
    await send(`${base}/short`, { key: shortKey })
    expect((await send(`${base}/short`, { key: shortKey })).replayed).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 450))
    expect((await send(`${base}/short`, { key: shortKey })).replayed).toBe(false)
    expect(executions.get('short')).toBe(2)

    // A thrown HttpException is the response Nest sends: a 4xx is stored and replayed.
    const conflictKey = randomUUID()
    const conflict = await send(`${base}/conflict`, { key: conflictKey })
    const conflictAgain = await send(`${base}/conflict`, { key: conflictKey })
    expect([conflict.status, conflictAgain.status, conflictAgain.replayed]).toEqual([409, 409, true])
    expect(conflictAgain.text).toBe(conflict.text)
    expect(executions.get('conflict')).toBe(1)

    // Exempted: it runs for every request, key or not.
    const exemptKey = randomUUID()
    await send(`${base}/exempt`, { key: exemptKey })
    expect((await send(`${base}/exempt`, { key: exemptKey })).replayed).toBe(false)
    expect(executions.get('exempt')).toBe(2)
  })

  it('with allRoutes, covers undecorated routes, exempts @Idempotent(false) and intercepts a decorated route once', async () => {
    let executed = 0
    class OpenController {
      open() {
        return { n: ++executed }
      }
      exempt() {
        return { n: ++executed }
      }
    }
    Controller('open')(OpenController)
    decorate(OpenController, 'open', Post())
    decorate(OpenController, 'exempt', Post('exempt'), Idempotent(false))
    const { AppModule, executions } = optionsApp({ store: new MemoryStore(), allRoutes: true })
    class Root {}
    Module({ imports: [AppModule], controllers: [OpenController] })(Root)
    const url = await start(Root, platform)
    const key = randomUUID()
    const first = await send(`${url}/open`, { key })
    const again = await send(`${url}/open`, { key })
    expect([first.status, again.replayed, again.text]).toEqual([201, true, first.text])
    await send(`${url}/open/exempt`, { key })
    await send(`${url}/open/exempt`, { key })
    expect(executed).toBe(3)
    // Covered by the global interceptor and by its own decorator: one claim, not a 409 to itself.
    const plainKey = randomUUID()
    expect((await send(`${url}/orders/plain`, { key: plainKey })).status).toBe(201)
    expect((await send(`${url}/orders/plain`, { key: plainKey })).replayed).toBe(true)
    expect(executions.get('plain')).toBe(1)
  })
})

describe('a global IdemModule and a principal from Nest’s context', () => {
  it('serves a feature module that does not import it, and keeps the users of one key apart', async () => {
    // An auth guard: the user comes from the request, as Passport would leave it in req.user.
    class AuthGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        const req = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: string }>()
        req.user = req.headers['x-user']
        return req.user !== undefined
      }
    }
    let executed = 0
    class TransfersController {
      constructor(readonly idem: Idempotency) {}
      create() {
        return { n: ++executed, injected: this.idem instanceof Idempotency }
      }
    }
    Controller('transfers')(TransfersController)
    Inject(Idempotency)(TransfersController, undefined, 0)
    decorate(TransfersController, 'create', Post(), UseGuards(AuthGuard), Idempotent())
    class FeatureModule {}
    Module({ controllers: [TransfersController] })(FeatureModule)
    class AppModule {}
    Module({
      imports: [
        IdemModule.forRoot({
          store: new MemoryStore(),
          isGlobal: true,
          principal: (_request, context) => context.switchToHttp().getRequest<{ user?: string }>().user,
        }),
        FeatureModule,
      ],
    })(AppModule)
    const url = `${await start(AppModule)}/transfers`
    const as = async (user: string, key: string) => {
      const response = await fetch(url, { method: 'POST', headers: { 'x-user': user, 'idempotency-key': key } })
      return { body: await response.json(), replayed: response.headers.get('idempotent-replayed') }
    }
    const key = randomUUID()
    const alice = await as('alice', key)
    const bob = await as('bob', key)
    const aliceAgain = await as('alice', key)
    expect(alice).toEqual({ body: { n: 1, injected: true }, replayed: null })
    expect(bob).toEqual({ body: { n: 2, injected: true }, replayed: null })
    expect(aliceAgain).toEqual({ body: { n: 1, injected: true }, replayed: 'true' })
  })
})

describe('a request given up on by an interceptor outside before the store answered', () => {
  it('releases the key its decision claimed, so that a retry runs instead of a 409', async () => {
    // The first claim answers after 300 ms; an outer interceptor gives up on the request at 50 ms.
    const memory = new MemoryStore()
    let slow = true
    const store = new Proxy(memory, {
      get(target, property) {
        const value = Reflect.get(target, property, target)
        if (property !== 'begin') return typeof value === 'function' ? value.bind(target) : value
        return async (...args: Parameters<IdempotencyStore['begin']>) => {
          if (slow) {
            slow = false
            await new Promise((resolve) => setTimeout(resolve, 300))
          }
          return memory.begin(...args)
        }
      },
    })
    class Timeout implements NestInterceptor {
      intercept(_context: ExecutionContext, next: CallHandler) {
        return next.handle().pipe(timeout(50))
      }
    }
    let executed = 0
    class SlowController {
      create() {
        return { n: ++executed }
      }
    }
    Controller('slow')(SlowController)
    // Applied bottom-up, as decorator syntax does: Timeout's goes in first, so it runs outermost.
    decorate(SlowController, 'create', Post(), Idempotent(), UseInterceptors(Timeout))
    class AppModule {}
    Module({ imports: [IdemModule.forRoot({ store })], controllers: [SlowController] })(AppModule)
    const url = `${await start(AppModule)}/slow`
    const key = randomUUID()
    expect((await send(url, { key })).status).toBe(500)
    // Once the claim has answered, the key is released: the retry executes.
    await new Promise((resolve) => setTimeout(resolve, 400))
    const retry = await send(url, { key })
    expect([retry.status, retry.replayed, executed]).toEqual([201, false, 1])
    expect((await send(url, { key })).replayed).toBe(true)
  })
})
