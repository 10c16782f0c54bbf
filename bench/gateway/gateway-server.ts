// The gateway under test, in a process of its own (bench/gateway.ts starts one per mode): an
// idempotency gateway in front of `upstream`, one route POST /orders in `mode`, records on Redis.
// Prints `{"url":"http://127.0.0.1:<port>"}` as one JSON line once it listens; SIGTERM closes it.
//
//   npx tsx bench/gateway/gateway-server.ts <off|enforce> <upstream url> [redis prefix] [redis url]

import { createGateway } from '../../src/gateway/index.js'

const [mode, upstream, prefix = 'idem-bench:', redisUrl = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'] =
  process.argv.slice(2)
if ((mode !== 'off' && mode !== 'enforce') || upstream === undefined) {
  console.error('usage: gateway-server.ts <off|enforce> <upstream url> [redis prefix] [redis url]')
  process.exit(2)
}

const gateway = await createGateway({
  listen: { host: '127.0.0.1', port: 0 },
  upstream: { url: upstream },
  stores: { main: { type: 'redis', url: redisUrl, prefix } },
  defaults: { store: 'main', required: true },
  routes: [{ name: 'orders', match: { methods: ['POST'], path: '/orders' }, mode }],
  metrics: false,
})
const { url } = await gateway.listen()
process.stdout.write(`${JSON.stringify({ url })}\n`)

let closing = false
const stop = () => {
  if (closing) return
  closing = true
  const force = setTimeout(() => process.exit(0), 3000)
  force.unref()
  gateway.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('gateway.close() failed:', error)
      process.exit(1)
    },
  )
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
