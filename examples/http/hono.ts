// Hono on @hono/node-server. Run it: npx tsx examples/http/hono.ts
import { pathToFileURL } from 'node:url'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { type IdempotencyStore, MemoryStore } from 'idem'
import { honoIdempotency } from 'idem/hono'
import { charge } from './payments.js'

export function createApp(store: IdempotencyStore): Hono {
  const app = new Hono()
  app.use('/payments', honoIdempotency({ store, required: true }))
  app.post('/payments', async (c) => {
    const payment = await charge(await c.req.json())
    c.header('location', `/payments/${payment.id}`)
    return c.json(payment, 201)
  })
  return app
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  serve({ fetch: createApp(new MemoryStore()).fetch, port: 3000 })
  console.log('POST http://localhost:3000/payments')
}
