// The legacy billing service the gateway is put in front of: a plain node:http server that knows
// nothing about idempotency keys. Every POST it receives runs again: a second charge, a second
// order, a second refund. It counts them, so that the example can show what reached it.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Billing {
  url: string
  /** What ran, by kind: cards charged, orders created, refunds paid. */
  counts: { charges: number; orders: number; refunds: number }
  close(): Promise<void>
}

export async function startBilling(): Promise<Billing> {
  const counts = { charges: 0, orders: 0, refunds: 0 }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const created = (resource: unknown) => {
        res.writeHead(201, { 'content-type': 'application/json' })
        res.end(JSON.stringify(resource))
      }
      const path = req.url ?? '/'
      if (req.method === 'POST' && path === '/payments') {
        counts.charges++ // the card is charged: the effect a retry must not repeat
        return created({ id: `ch_${counts.charges}`, customer: body.customer, amount: body.amount })
      }
      if (req.method === 'POST' && path.startsWith('/orders/')) {
        counts.orders++
        return created({ id: path.slice('/orders/'.length), order: counts.orders, items: body.items })
      }
      if (req.method === 'POST' && path === '/refunds') {
        counts.refunds++
        return created({ id: `re_${counts.refunds}`, charge: body.charge })
      }
      res.writeHead(404).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
