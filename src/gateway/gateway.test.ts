// The gateway in one process in front of a real upstream process that counts executions: the
// proxy's behaviour (headers, streaming, 502/504, broken responses), each route setting, the
// modes, reload and the admin API. Several gateway processes on shared stores: test/gateway/.

import { generateKeyPairSync } from 'node:crypto'
import { request } from 'node:http'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type Upstream } from '../../test/support/gateway/upstream.test-helper.js'
import { recordSpans } from '../../test/support/telemetry/tracing.test-helper.js'
import { idemTracing } from '../telemetry/tracing/tracing.js'
import type { GatewayConfigInput } from './config/schema.js'
import { createGateway, type Gateway } from './gateway.js'
import { signRequest } from './signature.js'

const TOKEN = 'admin-token-for-tests'
const JWT_SECRET = 'a-jwt-secret-of-at-least-32-characters!'
const SIGNING_SECRET = 'a-signing-secret-of-at-least-32-chars!!'

let upstream: Upstream
beforeAll(async () => {
  upstream = await startUpstream()
})
afterAll(async () => {
  await upstream?.stop()
})

function config(extra: Partial<GatewayConfigInput> = {}): GatewayConfigInput {
  return {
    listen: { port: 0 },
    upstream: { url: upstream.url, timeout: '400ms' },
    admin: { listen: { port: 0 }, token: TOKEN },
    stores: { main: { type: 'memory' } },
    defaults: { store: 'main' },
    routes: [
      { name: 'orders', match: { methods: ['POST'], path: '/orders' } },
      { name: 'slow', match: { methods: ['POST'], path: '/slow' } },
      { name: 'fail', match: { methods: ['POST'], path: '/fail' } },
      { name: 'die', match: { methods: ['POST'], path: '/die' } },
      { name: 'stream', match: { methods: ['POST'], path: '/stream' } },
      {
        name: 'payments',
        match: { methods: ['POST'], path: '/payments/:account' },
        key: { body: 'payment.id' },
        required: true,
        fingerprint: { body: ['payment.amount', 'payment.currency'] },
      },
      {
        name: 'jwt',
        match: { methods: ['POST'], path: '/jwt/*' },
        principal: { jwt: { secret: JWT_SECRET, issuer: 'tests' } },
      },
      {
        name: 'signed',
        match: { methods: ['POST'], path: '/signed' },
        signature: { secret: SIGNING_SECRET, window: '1m' },
      },
      { name: 'observed', match: { methods: ['POST'], path: '/observed/*' }, mode: 'observe', required: true },
    ],
    ...extra,
  }
}

async function started(
  input: GatewayConfigInput = config(),
): Promise<{ gateway: Gateway; url: string; admin: string }> {
  const gateway = await createGateway(input)
  const { url, adminUrl } = await gateway.listen()
  return { gateway, url, admin: adminUrl as string }
}

let counter = 0
const freshKey = (label: string) => `${label}-${process.pid}-${++counter}-${Date.now()}`

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

function rawPost(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const admin = (base: string, path: string, init: RequestInit = {}) =>
  fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } })

async function executionsOf(key: string): Promise<number> {
  return (await upstream.executions()).byKey[key] ?? 0
}

describe('the gateway as a reverse proxy', () => {
  let gw: Awaited<ReturnType<typeof started>>
  beforeAll(async () => {
    gw = await started()
  })
  afterAll(async () => {
    await gw?.gateway.close()
  })

  it('forwards with X-Forwarded-* and Forwarded set, and without hop-by-hop headers', async () => {
    // node:http, not fetch: fetch refuses to send Connection and the other hop-by-hop headers.
    const { status, body } = await rawPost(`${gw.url}/anything?x=1`, '{"a":1}', {
      'content-type': 'application/json',
      connection: 'keep-alive, x-private',
      'x-private': 'hop',
      'proxy-authorization': 'Basic secret',
      te: 'trailers',
      'x-kept': 'yes',
      'x-test-key': freshKey('unmatched'),
    })
    expect(status).toBe(201)
    const { headers } = JSON.parse(body) as { headers: Record<string, string> }
    expect(headers['x-kept']).toBe('yes')
    expect(headers['x-private']).toBeUndefined()
    expect(headers['proxy-authorization']).toBeUndefined()
    expect(headers.te).toBeUndefined()
    expect(headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(headers['x-forwarded-proto']).toBe('http')
    expect(headers['x-forwarded-host']).toBe(new URL(gw.url).host)
    expect(headers.forwarded).toBe(`for=127.0.0.1;host="${new URL(gw.url).host}";proto=http`)
  })

  it('streams the response: the first chunk arrives before the upstream has written the last', async () => {
    const response = await post(`${gw.url}/stream?chunks=8`, {}, { 'idempotency-key': freshKey('stream') })
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const first = await reader.read()
    const firstText = Buffer.from(first.value as Uint8Array).toString()
    let rest = ''
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += Buffer.from(chunk.value).toString()
    expect(firstText).toMatch(/^chunk 0 /)
    expect(rest).toContain('chunk 7')
    expect(rest).not.toContain('chunk 0 ')
  })

  it('answers 504 problem+json when the upstream is slower than the timeout, and releases the key', async () => {
    const key = freshKey('slow')
    const response = await post(`${gw.url}/slow?ms=1500`, {}, { 'idempotency-key': key, 'x-test-key': key })
    expect(response.status).toBe(504)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(await response.json()).toMatchObject({ type: 'urn:idem:problem:upstream-timeout', status: 504 })
    // Released: the retry is forwarded again (and times out again).
    expect((await post(`${gw.url}/slow?ms=1500`, {}, { 'idempotency-key': key, 'x-test-key': key })).status).toBe(504)
    expect(await executionsOf(key)).toBe(2)
  })

  it('answers 502 problem+json when the upstream cannot be reached', async () => {
    const closed = await started(config({ upstream: { url: 'http://127.0.0.1:1' } }))
    try {
      const response = await post(`${closed.url}/orders`, {}, { 'idempotency-key': freshKey('down') })
      expect(response.status).toBe(502)
      expect(await response.json()).toMatchObject({ type: 'urn:idem:problem:upstream-unavailable', status: 502 })
      expect((await fetch(`${closed.url}/plain`)).status).toBe(502)
    } finally {
      await closed.gateway.close()
    }
  })

  it('releases the key when the upstream answers 5xx or breaks off mid-body, so a retry executes again', async () => {
    const key = freshKey('fail')
    for (let i = 0; i < 2; i++) {
      expect((await post(`${gw.url}/fail`, {}, { 'idempotency-key': key, 'x-test-key': key })).status).toBe(503)
    }
    expect(await executionsOf(key)).toBe(2)

    const broken = freshKey('die')
    for (let i = 0; i < 2; i++) {
      await expect(
        post(`${gw.url}/die`, {}, { 'idempotency-key': broken, 'x-test-key': broken }).then((r) => r.text()),
      ).rejects.toThrow()
    }
    expect(await executionsOf(broken)).toBe(2)
    const stats = gw.gateway.summary().find((route) => route.name === 'die')?.stats
    expect(stats?.outcomes.released).toBe(2)
    expect(stats?.upstream.broken).toBe(2)
  })

  it('executes a POST once per key and replays it, and lets GET and unmatched paths through untouched', async () => {
    const key = freshKey('orders')
    const bodies = []
    for (let i = 0; i < 3; i++) {
      const response = await post(`${gw.url}/orders`, { id: key }, { 'idempotency-key': key })
      expect(response.status).toBe(201)
      bodies.push(await response.text())
    }
    expect(new Set(bodies).size).toBe(1)
    expect(await executionsOf(key)).toBe(1)
    expect((await fetch(`${gw.url}/orders`)).status).toBe(200)
  })
})

describe('route settings', () => {
  let gw: Awaited<ReturnType<typeof started>>
  beforeAll(async () => {
    gw = await started()
  })
  afterAll(async () => {
    await gw?.gateway.close()
  })

  it('takes the key from a body field and fingerprints only the chosen fields', async () => {
    const id = freshKey('pay')
    const payment = (amount: number, note: string) => ({ payment: { id, amount, currency: 'EUR', note }, id })
    const first = await post(`${gw.url}/payments/acc1`, payment(100, 'first'))
    expect(first.status).toBe(201)
    // Another note (not a fingerprint field): the same payment, replayed.
    const again = await post(`${gw.url}/payments/acc1`, payment(100, 'retry'))
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    // Another amount with the same payment id: refused.
    expect((await post(`${gw.url}/payments/acc1`, payment(200, 'x'))).status).toBe(422)
    // No payment id, and the route requires one: 400; a client cannot smuggle the key in a header.
    const smuggled = await post(
      `${gw.url}/payments/acc1`,
      { payment: { amount: 1 } },
      { 'x-idem-gateway-body-key': '"k"' },
    )
    expect(smuggled.status).toBe(400)
    expect(await executionsOf(id)).toBe(1)
  })

  it('keys of different JWT subjects never meet; a forged or expired token is refused with 401', async () => {
    const token = (sub: string, secret = JWT_SECRET, exp = '5m') =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuer('tests')
        .setExpirationTime(exp)
        .sign(new TextEncoder().encode(secret))
    const key = freshKey('jwt')
    const send = async (bearer: string) =>
      post(`${gw.url}/jwt/x`, { id: key }, { 'idempotency-key': key, authorization: `Bearer ${bearer}` })
    expect((await send(await token('alice'))).status).toBe(201)
    expect((await send(await token('alice'))).headers.get('idempotent-replayed')).toBe('true')
    expect((await send(await token('bob'))).headers.get('idempotent-replayed')).toBeNull()
    expect(await executionsOf(key)).toBe(2)
    const forged = await send(await token('alice', 'another-secret-of-at-least-32-characters'))
    expect(forged.status).toBe(401)
    expect(await forged.json()).toMatchObject({ type: 'urn:idem:problem:unauthenticated' })
    expect((await send(await token('alice', JWT_SECRET, '-1m'))).status).toBe(401)
    expect(await executionsOf(key)).toBe(2)
  })

  it('passes signed requests and refuses a stale, tampered or replayed one', async () => {
    const body = JSON.stringify({ id: freshKey('signed') })
    const signed = (overrides: { timestamp?: number; nonce?: string } = {}) =>
      signRequest({ method: 'POST', url: '/signed', body, secret: SIGNING_SECRET, ...overrides })
    const valid = signed()
    expect((await post(`${gw.url}/signed`, body, valid)).status).toBe(201)
    const replayed = await post(`${gw.url}/signed`, body, valid)
    expect(replayed.status).toBe(409)
    expect(await replayed.json()).toMatchObject({ type: 'urn:idem:problem:nonce-reused' })
    const stale = signed({ timestamp: Math.floor(Date.now() / 1000) - 120 })
    expect((await post(`${gw.url}/signed`, body, stale)).status).toBe(401)
    const tampered = await post(`${gw.url}/signed`, body.replace('signed', 'Signed'), signed())
    expect(tampered.status).toBe(401)
    expect(await tampered.json()).toMatchObject({ type: 'urn:idem:problem:bad-signature' })
  })

  it('in observe mode forwards everything and counts what enforce would have answered', async () => {
    const key = freshKey('observe')
    for (let i = 0; i < 3; i++) {
      expect((await post(`${gw.url}/observed/a`, { id: key }, { 'idempotency-key': key })).status).toBe(201)
    }
    expect((await post(`${gw.url}/observed/a`, { id: key, other: true }, { 'idempotency-key': key })).status).toBe(201)
    expect((await post(`${gw.url}/observed/a`, { id: key })).status).toBe(201)
    expect(await executionsOf(key)).toBe(5)
    const stats = gw.gateway.summary().find((route) => route.name === 'observed')?.stats
    expect(stats?.observed).toEqual({
      replayed: 2,
      rejected: 2,
      rejectedByCode: { FINGERPRINT_MISMATCH: 1, MISSING_KEY: 1 },
    })
    expect(stats?.outcomes).toMatchObject({ executed: 1, forwarded: 4, replayed: 0, rejected: 0 })
  })
})

describe('modes, reload and the admin API', () => {
  let gw: Awaited<ReturnType<typeof started>>
  beforeAll(async () => {
    gw = await started()
  })
  afterAll(async () => {
    await gw?.gateway.close()
  })

  it('refuses every call without the token, and serves healthz without one', async () => {
    expect((await fetch(`${gw.admin}/v1/routes`)).status).toBe(401)
    expect((await fetch(`${gw.admin}/v1/routes`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    expect((await fetch(`${gw.admin}/healthz`)).status).toBe(200)
  })

  it('switches a route between off, observe and enforce without a restart, and reports the switch', async () => {
    const switches: unknown[] = []
    gw.gateway.on('mode_switched', (event) => switches.push(event))
    const key = freshKey('modes')
    const send = () => post(`${gw.url}/orders`, { id: key }, { 'idempotency-key': key })
    const off = await admin(gw.admin, '/v1/routes/orders/mode', { method: 'PUT', body: '{"mode":"off"}' })
    expect(await off.json()).toEqual({ route: 'orders', from: 'enforce', to: 'off' })
    await send()
    await send()
    expect(await executionsOf(key)).toBe(2)
    await admin(gw.admin, '/v1/routes/orders/mode', { method: 'PUT', body: '{"mode":"enforce"}' })
    await send()
    await send()
    expect(await executionsOf(key)).toBe(3)
    const bad = await admin(gw.admin, '/v1/routes/orders/mode', { method: 'PUT', body: '{"mode":"on"}' })
    expect(bad.status).toBe(400)
    expect((await admin(gw.admin, '/v1/routes/nope/mode', { method: 'PUT', body: '{"mode":"off"}' })).status).toBe(400)
    expect(switches).toHaveLength(2)
  })

  it('inspects and purges a key: the next request executes afresh', async () => {
    const key = freshKey('purge')
    await post(`${gw.url}/orders`, { id: key }, { 'idempotency-key': key })
    const found = await admin(gw.admin, `/v1/keys/orders/${key}`)
    expect(found.status).toBe(200)
    expect(await found.json()).toMatchObject({ record: { state: 'completed' } })
    const purged = await admin(gw.admin, `/v1/keys/orders/${key}`, { method: 'DELETE' })
    expect(await purged.json()).toMatchObject({ existed: true })
    expect((await admin(gw.admin, `/v1/keys/orders/${key}`)).status).toBe(404)
    await post(`${gw.url}/orders`, { id: key }, { 'idempotency-key': key })
    expect(await executionsOf(key)).toBe(2)
  })

  it('shows the configuration with its secrets redacted', async () => {
    const text = await (await admin(gw.admin, '/v1/config')).text()
    expect(text).toContain('"orders"')
    expect(text).not.toContain(TOKEN)
    expect(text).not.toContain(JWT_SECRET)
    expect(text).not.toContain(SIGNING_SECRET)
  })

  it('reloads a valid configuration atomically and refuses an invalid one, keeping the running one', async () => {
    const next = config()
    next.routes = [
      ...(next.routes ?? []),
      { name: 'added', match: { methods: ['POST'], path: '/added' }, mode: 'observe' },
    ]
    const reloaded = await admin(gw.admin, '/v1/reload', { method: 'POST', body: JSON.stringify(next) })
    expect(reloaded.status).toBe(200)
    expect(gw.gateway.routes.map((route) => route.name)).toContain('added')

    const invalid = { ...next, routes: [{ name: 'bad', match: { path: 'no-slash' }, mode: 'sometimes' }] }
    const refused = await admin(gw.admin, '/v1/reload', { method: 'POST', body: JSON.stringify(invalid) })
    expect(refused.status).toBe(422)
    const { issues } = (await refused.json()) as { issues: Array<{ path: string }> }
    expect(issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(['routes[0].match.path', 'routes[0].mode']),
    )
    expect(gw.gateway.routes.map((route) => route.name)).toContain('added')
    // listen cannot change without a restart.
    const moved = await admin(gw.admin, '/v1/reload', {
      method: 'POST',
      body: JSON.stringify({ ...next, listen: { port: 1 } }),
    })
    expect(moved.status).toBe(422)
  })

  it('serves Prometheus metrics per route on the admin port', async () => {
    await post(`${gw.url}/orders`, { id: 1 }, { 'idempotency-key': freshKey('metrics') })
    const text = await (await admin(gw.admin, '/metrics')).text()
    expect(text).toMatch(/idem_gateway_requests_total\{route="orders",outcome="executed"\} [1-9]/)
    expect(text).toContain('idem_gateway_breaker_state{store="main"} 0')
    expect(text).toMatch(/idem_requests_total\{scope="gateway\|POST orders",outcome="executed"\}/)
  })
})

describe('principals from a public key', () => {
  it('verifies an EdDSA token against a PEM public key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const gw = await started(
      config({
        routes: [
          {
            name: 'signed-jwt',
            match: { methods: ['POST'], path: '/pk' },
            principal: {
              jwt: { publicKey: publicKey.export({ type: 'spki', format: 'pem' }) as string, algorithms: ['EdDSA'] },
            },
          },
        ],
      }),
    )
    try {
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setSubject('carol').sign(privateKey)
      const ok = await post(
        `${gw.url}/pk`,
        { id: 1 },
        { authorization: `Bearer ${token}`, 'idempotency-key': freshKey('pk') },
      )
      expect(ok.status).toBe(201)
      expect((await post(`${gw.url}/pk`, {}, { authorization: 'Bearer not.a.token' })).status).toBe(401)
    } finally {
      await gw.gateway.close()
    }
  })
})

describe('spans per route', () => {
  const spans = recordSpans()

  it('traces every route, and the routes a reload builds, through watchRoutes', async () => {
    const gw = await started()
    try {
      const tracing = idemTracing()
      gw.gateway.watchRoutes((idem) => tracing.watch(idem))
      await post(`${gw.url}/orders`, { id: 1 }, { 'idempotency-key': freshKey('span') })
      const next = config()
      next.routes = [{ name: 'renamed', match: { methods: ['POST'], path: '/orders' } }]
      await gw.gateway.reload(next)
      await post(`${gw.url}/orders`, { id: 2 }, { 'idempotency-key': freshKey('span') })
      const scopes = spans.named('idem.run').map((span) => span.attributes['idem.scope'])
      expect(scopes).toEqual(['gateway|anonymous|POST orders', 'gateway|anonymous|POST renamed'])
    } finally {
      await gw.gateway.close()
    }
  })
})
