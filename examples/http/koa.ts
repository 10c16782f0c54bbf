// Koa 3 (or 2): the body parser, then the middleware, then the routes.
// Run it: npx tsx examples/http/koa.ts (a client retries a payment; add --serve to keep it on :3000)
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { bodyParser } from '@koa/bodyparser'
import { type IdempotencyStore, MemoryStore } from 'idem'
import { koaIdempotency } from 'idem/koa'
import Koa from 'koa'
import { charge, chargeCount } from './payments.js'

export function createApp(store: IdempotencyStore): Koa {
  const app = new Koa()
  app.use(bodyParser())
  app.use(koaIdempotency({ store, required: true }))
  app.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/payments') return next()
    const payment = await charge(ctx.request.body as { amount: number; currency: string })
    ctx.status = 201
    ctx.set('location', `/payments/${payment.id}`)
    ctx.body = payment
  })
  return app
}

/** A client that retries its payment with the same key, as after a timeout: charged once, replayed once. */
export async function retriedPayment(): Promise<{ charges: number; replayed: boolean; same: boolean }> {
  const server = createApp(new MemoryStore()).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments`
  const key = randomUUID()
  const post = () =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ amount: 42, currency: 'EUR' }),
    })
  try {
    const before = chargeCount()
    const first = await post()
    const retry = await post()
    const [body, replay] = [await first.text(), await retry.text()]
    console.log(first.status, body)
    console.log(retry.status, replay, `Idempotent-Replayed: ${retry.headers.get('idempotent-replayed')}`)
    const replayed = retry.headers.get('idempotent-replayed') === 'true'
    return { charges: chargeCount() - before, replayed, same: replay === body }
  } finally {
    server.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv.includes('--serve')) {
    createApp(new MemoryStore()).listen(3000, () => console.log('POST http://localhost:3000/payments'))
  } else {
    const outcome = await retriedPayment()
    if (outcome.charges !== 1 || !outcome.replayed || !outcome.same) {
      console.error('the retry was not replayed', outcome)
      process.exitCode = 1
    }
  }
}
