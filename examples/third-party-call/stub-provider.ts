// A stub payment provider on node:http that honours `Idempotency-Key` the way Stripe does: the
// first request with a key creates a charge and stores the response; a later request with the
// same key gets that stored response back and creates nothing. It records every request it gets.

import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedRequest {
  method: string
  path: string
  idempotencyKey: string | null
  body: string
  /** The charge this request was answered with. */
  chargeId: string
  /** True when the key had been seen: the stored response was returned, nothing was charged. */
  replayed: boolean
}

export interface StubProvider {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string
  /** Every request received, in order. */
  readonly requests: readonly ReceivedRequest[]
  /** Charges actually created: what the customer's card statement would show. */
  readonly charges: number
  close(): Promise<void>
}

interface StoredResponse {
  body: string
  /** The request body the key was first used with (Stripe refuses a key reused with other parameters). */
  requestBody: string
}

export async function startStubProvider(): Promise<StubProvider> {
  const requests: ReceivedRequest[] = []
  const byKey = new Map<string, StoredResponse>()
  let charges = 0

  const server = createServer(async (req, res) => {
    const body = await readBody(req)
    if (req.method !== 'POST' || req.url !== '/v1/charges') {
      res.writeHead(404).end()
      return
    }
    const key = req.headers['idempotency-key']
    const idempotencyKey = typeof key === 'string' ? key : null
    const stored = idempotencyKey === null ? undefined : byKey.get(idempotencyKey)
    if (stored !== undefined && stored.requestBody !== body) {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { type: 'idempotency_error', message: 'key reused with other parameters' } }))
      return
    }
    let response = stored
    if (response === undefined) {
      charges++
      const { amount, currency } = JSON.parse(body) as { amount: number; currency: string }
      response = { requestBody: body, body: JSON.stringify({ id: `ch_${charges}`, amount, currency }) }
      if (idempotencyKey !== null) byKey.set(idempotencyKey, response)
    }
    const chargeId = (JSON.parse(response.body) as { id: string }).id
    requests.push({ method: req.method, path: req.url, idempotencyKey, body, chargeId, replayed: stored !== undefined })
    res.writeHead(200, {
      'content-type': 'application/json',
      ...(stored !== undefined ? { 'idempotent-replayed': 'true' } : {}),
    })
    res.end(response.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get charges() {
      return charges
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
