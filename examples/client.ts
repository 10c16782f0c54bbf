// The client side: one Idempotency-Key per payment, the same key on every retry.
// Run it: npx tsx examples/client.ts (it starts the Express example of docs/http.md and pays once)
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { MemoryStore } from 'idem'
import { idempotencyInfo, idempotentFetch } from 'idem/client'
import { createApp } from './http/express.js'
import type { Payment } from './http/payments.js'

// One per application, shared: it remembers which body each key was sent with.
const fetchIdempotently = idempotentFetch({
  maxAttempts: 5, // the first attempt and up to four retries, all with the same key
  attemptTimeoutMs: 5_000, // an attempt without response headers by then is aborted and retried
  deadlineMs: 20_000, // the whole payment, waits included
  onRetry: ({ attempt, delayMs, status, error }) =>
    console.warn(`attempt ${attempt} failed (${status ?? String(error)}); retrying in ${delayMs} ms`),
})

export interface Paid {
  payment: Payment
  key: string
  attempts: number
  /** True when an earlier attempt had already charged and the server replayed its answer. */
  replayed: boolean
}

export async function pay(baseUrl: string, amount: number, currency: string): Promise<Paid> {
  const response = await fetchIdempotently(`${baseUrl}/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount, currency }),
  })
  if (response.status !== 201) throw new Error(`the payment failed: ${response.status} ${await response.text()}`)
  const { key, attempts, replayed } = idempotencyInfo(response) ?? { key: '', attempts: 0, replayed: false }
  return { payment: (await response.json()) as Payment, key, attempts, replayed }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const server = createServer(createApp(new MemoryStore()))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const paid = await pay(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 42, 'EUR')
  console.log(paid)
  server.close()
}
