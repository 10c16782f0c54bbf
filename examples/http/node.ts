// node:http: wrap a plain request handler. Run it: npx tsx examples/http/node.ts
import { createServer, type Server } from 'node:http'
import { pathToFileURL } from 'node:url'
import { type IdempotencyStore, MemoryStore } from 'idem'
import { withIdempotency } from 'idem/http'
import { charge } from './payments.js'

export function createApp(store: IdempotencyStore): Server {
  const handler = withIdempotency({ store, required: true }, async (req, res, body) => {
    // The wrapper read the body to fingerprint it; without a key, read it from `req` as usual.
    if (req.method !== 'POST' || req.url !== '/payments' || body === undefined) {
      res.writeHead(404).end()
      return
    }
    const payment = await charge(JSON.parse(body.toString()))
    res.writeHead(201, { 'content-type': 'application/json', location: `/payments/${payment.id}` })
    res.end(JSON.stringify(payment))
  })
  return createServer((req, res) => void handler(req, res))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  createApp(new MemoryStore()).listen(3000, () => console.log('POST http://localhost:3000/payments'))
}
