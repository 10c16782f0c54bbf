// Express 5 (or 4): mount the middleware after the body parser. Run it: npx tsx examples/http/express.ts
import { pathToFileURL } from 'node:url'
import express from 'express'
import { type IdempotencyStore, MemoryStore } from 'idem'
import { expressIdempotency } from 'idem/express'
import { charge } from './payments.js'

export function createApp(store: IdempotencyStore): express.Express {
  const app = express()
  app.use(express.json())
  app.use(expressIdempotency({ store, required: true }))
  app.post('/payments', async (req, res) => {
    const payment = await charge(req.body)
    res.status(201).location(`/payments/${payment.id}`).json(payment)
  })
  return app
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  createApp(new MemoryStore()).listen(3000, () => console.log('POST http://localhost:3000/payments'))
}
