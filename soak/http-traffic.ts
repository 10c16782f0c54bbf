// HTTP traffic of the soak run: a node:http server behind Idem's Idempotency-Key middleware, on a
// real socket, and an undici keep-alive pool sending it steady POSTs, a fraction of them
// duplicates (some at once with the first, some later). Every handler execution is counted per
// key; every replay must be byte for byte the first response.

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { withIdempotency } from '../src/http/index.js'
import type { Leak } from './leak.js'
import type { Errors, Ledger } from './ledger.js'
import type { SoakStore } from './stores.js'
import { type DuplicateMix, startDuplicateTraffic } from './traffic-shape.js'

export interface HttpTrafficOptions {
  store: SoakStore
  ledger: Ledger
  errors: Errors
  rate: number
  mix: DuplicateMix
  random: () => number
  runId: string
  leak: Leak | undefined
  /** Most requests in flight; beyond it the pacer sheds (counted) rather than queue without bound. */
  maxInFlight?: number
  /** How long the handler works: long enough that a concurrent duplicate meets it in progress. */
  handlerMs?: number
}

interface Sent {
  key: string
  body: string
  at: number
  /** The first response's body, once it came back: every replay must equal it. */
  answer?: string
}

export interface Traffic {
  stop(): void
  /** Resolves when everything sent has been answered (or after `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>
  close(): Promise<void>
}

export async function startHttpTraffic(options: HttpTrafficOptions): Promise<Traffic> {
  const { ledger, errors, leak } = options
  const handlerMs = options.handlerMs ?? 5
  const maxInFlight = options.maxInFlight ?? 256
  let order = 0
  // With `wait`, a duplicate of a request still running waits for its response and replays it,
  // so every duplicate, concurrent or not, must come back as a replay.
  const handler = withIdempotency(
    { idem: options.store.idem, required: true, onInProgress: 'wait', scope: `soak-http-${options.runId}` },
    async (_req, res, body) => {
      const { key, amount } = JSON.parse((body as Buffer).toString()) as { key: string; amount: number }
      ledger.executed(key)
      leak?.onRequest()
      await sleep(handlerMs)
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ order: `ord-${++order}`, key, amount }))
    },
  )
  const server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16, pipelining: 1 })

  const send = async (entry: Sent) => {
    ledger.sent++
    try {
      const response = await pool.request({
        path: '/orders',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': entry.key },
        body: entry.body,
      })
      const text = await response.body.text()
      const replayed = response.headers['idempotent-replayed'] === 'true'
      if (response.statusCode !== 201) {
        errors.add(
          `http ${options.store.name}`,
          `status ${response.statusCode} for ${entry.key}: ${text.slice(0, 200)}`,
        )
      } else if (replayed) {
        ledger.replayed++
        if (entry.answer !== undefined && entry.answer !== text)
          errors.add(`http ${options.store.name}`, `replay of ${entry.key} differs from the first response`)
      } else {
        entry.answer = text
      }
    } catch (error) {
      errors.add(`http ${options.store.name}`, error)
    } finally {
      ledger.done++
    }
  }
  const pacer = startDuplicateTraffic<Sent>({
    rate: options.rate,
    mix: options.mix,
    random: options.random,
    ledger,
    maxInFlight,
    make: (seq, now) => {
      const key = `h-${options.runId}-${seq}`
      return { key, body: JSON.stringify({ key, amount: seq % 10_000 }), at: now }
    },
    send: (entry) => void send(entry),
  })

  return {
    stop: () => pacer.stop(),
    async drain(timeoutMs) {
      const until = Date.now() + timeoutMs
      while (ledger.inFlight > 0 && Date.now() < until) await sleep(20)
    },
    async close() {
      await pool.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
