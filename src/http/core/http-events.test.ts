// The HTTP core's `response` event: one per request subject to idempotency, with the outcome and
// the status sent, and never the key or the principal.

import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import type { HttpResponseEvent } from './events.js'
import { HttpIdempotency } from './http-idempotency.js'
import type { Decision, HttpRequest } from './types.js'

function post(key: string | undefined, body: unknown, extra: Record<string, string> = {}): HttpRequest {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    authorization: 'Bearer alice',
    ...extra,
  }
  if (key !== undefined) headers['idempotency-key'] = key
  return { method: 'POST', url: '/orders', route: '/orders', headers, body }
}

/** Decides, and when the handler is to run, answers with `status`. */
async function send(http: HttpIdempotency, request: HttpRequest, status = 201): Promise<Decision> {
  const decision = await http.decide(request)
  if (decision.action === 'proceed') {
    decision.capture.write('{"id":1}')
    await decision.capture.end(status, [['content-type', 'application/json']])
  }
  return decision
}

describe("HttpIdempotency's response event", () => {
  it('reports executed, replayed, rejected, released and no_key with their statuses', async () => {
    const http = new HttpIdempotency({ store: new MemoryStore() })
    const events: HttpResponseEvent[] = []
    http.on('response', (event) => events.push(event))

    await send(http, post('k1', { amount: 1 }))
    await send(http, post('k1', { amount: 1 }))
    await send(http, post('k1', { amount: 2 }))
    await send(http, post('k2', { amount: 1 }), 503)
    await send(http, post(undefined, { amount: 1 }))
    await send(http, post('"unclosed', { amount: 1 }))
    await send(http, { ...post('k3', {}), method: 'GET' })

    expect(events).toEqual([
      { method: 'POST', route: '/orders', outcome: 'executed', status: 201 },
      { method: 'POST', route: '/orders', outcome: 'replayed', status: 201 },
      { method: 'POST', route: '/orders', outcome: 'rejected', status: 422, code: 'FINGERPRINT_MISMATCH' },
      { method: 'POST', route: '/orders', outcome: 'released', status: 503 },
      { method: 'POST', route: '/orders', outcome: 'no_key', status: undefined },
      { method: 'POST', route: '/orders', outcome: 'rejected', status: 400, code: 'INVALID_KEY' },
    ])
    const text = JSON.stringify(events)
    expect(text).not.toContain('k1')
    expect(text).not.toContain('alice')
  })

  it('reports a key in progress as rejected with 409, and a response abandoned mid-way as released', async () => {
    const http = new HttpIdempotency({ store: new MemoryStore() })
    const events: HttpResponseEvent[] = []
    http.on('response', (event) => events.push(event))
    const first = await http.decide(post('busy', {}))
    expect(first.action).toBe('proceed')
    await send(http, post('busy', {}))
    if (first.action === 'proceed') await first.capture.abort(new Error('socket closed'))
    expect(events).toEqual([
      { method: 'POST', route: '/orders', outcome: 'rejected', status: 409, code: 'IN_PROGRESS' },
      { method: 'POST', route: '/orders', outcome: 'released', status: undefined },
    ])
  })

  it('stops reporting once the listener is removed', async () => {
    const http = new HttpIdempotency({ store: new MemoryStore() })
    const events: HttpResponseEvent[] = []
    const stop = http.on('response', (event) => events.push(event))
    await send(http, post('a', {}))
    stop()
    await send(http, post('b', {}))
    expect(events).toHaveLength(1)
  })
})
