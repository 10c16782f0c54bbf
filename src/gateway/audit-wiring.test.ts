// The gateway's audit log: traffic with duplicates, a mode switch and a purge through the admin
// API end up in a log that `idem audit verify` passes and `idem audit show` reads back; the SM4
// algorithm end to end; a full queue with `drop` (counted) and `fail` (refused, counted and
// reported); a start refused for bad keys; what `decisions: rejections` leaves out; redaction;
// the log in a PostgreSQL table, verified and read with --postgres.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireRedisBinaries, requireService, SERVICES } from '../../test/services.js'
import { runIdem } from '../../test/support/cli/idem-cli.test-helper.js'
import { startPrivateRedis } from '../../test/support/gateway/private-redis.test-helper.js'
import { startUpstream, type Upstream } from '../../test/support/gateway/upstream.test-helper.js'
import { generateAuditKey, generateSigningKeyPair } from '../audit/keys.js'
import { AuditQueueFullError } from '../audit/queue-errors.js'
import { GatewayConfigError, redactConfig } from './config/load-config.js'
import type { GatewayConfigInput } from './config/schema.js'
import { createGateway, type Gateway } from './gateway.js'

const TOKEN = 'admin-token-for-audit-tests'
let upstream: Upstream
let dir: string
let keys: string
let signing: ReturnType<typeof generateSigningKeyPair>
let publicKey: string
let files = 0

beforeAll(async () => {
  upstream = await startUpstream()
  dir = mkdtempSync(join(tmpdir(), 'idem-gateway-audit-'))
  keys = `k1:${generateAuditKey()}`
  signing = generateSigningKeyPair()
  publicKey = join(dir, 'public.pem')
  writeFileSync(publicKey, signing.publicKeyPem)
})
afterAll(async () => {
  await upstream?.stop()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

function config(audit: Partial<NonNullable<GatewayConfigInput['audit']>> = {}): {
  input: GatewayConfigInput
  file: string
} {
  const file = join(dir, `audit-${++files}.jsonl`)
  return {
    file,
    input: {
      listen: { port: 0 },
      upstream: { url: upstream.url },
      admin: { listen: { port: 0 }, token: TOKEN },
      metrics: false,
      stores: { main: { type: 'memory' } },
      defaults: { store: 'main' },
      routes: [
        { name: 'orders', match: { methods: ['POST'], path: '/orders' } },
        { name: 'observed', match: { methods: ['POST'], path: '/observed' }, mode: 'observe' },
      ],
      audit: {
        file,
        sync: 'none',
        keys,
        signingKey: { id: 's1', privateKey: signing.privateKeyPem },
        checkpoint: { everyEntries: 4 },
        ...audit,
      },
    },
  }
}

const post = (url: string, key?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: '{"item":"book"}',
  }).then(async (response) => ({ status: response.status, text: await response.text() }))

/** `idem` in this process, its printed lines captured. */
const idem = runIdem

const admin = (base: string, path: string, init: RequestInit = {}) =>
  fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } })

const verify = (file: string) =>
  idem('audit', 'verify', '--file', file, '--keys', keys, '--public-key', `s1=${publicKey}`)
const show = async (file: string, ...filters: string[]) => {
  const { code, out } = await idem('audit', 'show', '--file', file, '--keys', keys, '--json', ...filters)
  expect(code).toBe(0)
  return out.map((line) => JSON.parse(line) as Record<string, unknown>)
}

describe('a gateway with an audit log', () => {
  it('records decisions, the mode switch and the purge, in a log that verifies', async () => {
    const { input, file } = config()
    const gateway = await createGateway(input)
    let closed = false
    try {
      const { url, adminUrl = '' } = await gateway.listen()
      const key = `order-${Date.now()}`
      expect((await post(`${url}/orders`, key)).status).toBe(201)
      expect((await post(`${url}/orders`, key)).status).toBe(201) // replayed
      expect((await post(`${url}/orders`)).status).toBe(201) // no key
      expect((await post(`${url}/observed`, key)).status).toBe(201)
      expect((await post(`${url}/observed`, key)).status).toBe(201) // would have replayed
      const switched = await admin(adminUrl, '/v1/routes/orders/mode', {
        method: 'PUT',
        body: JSON.stringify({ mode: 'observe' }),
      })
      expect(switched.status).toBe(200)
      expect((await admin(adminUrl, `/v1/keys/orders/${key}`, { method: 'DELETE' })).status).toBe(200)

      const status = (await (await admin(adminUrl, '/v1/audit')).json()) as {
        stats: { dropped: number; refused: number; written: number }
        lastSeq: number
      }
      expect(status.stats).toMatchObject({ dropped: 0, refused: 0 })
      await gateway.close()
      closed = true

      const verified = await verify(file)
      expect(verified.code, verified.out.join('\n')).toBe(0)
      expect(verified.out[1]).toMatch(/^ {2}entries: 7, checkpoints: 2, last seq 9 \(hash [0-9a-f]{64}\)$/)
      expect(verified.out.at(-1)).toBe('OK: every entry holds')
      expect(verified.out).toContain('  signed up to: seq 8')

      const strip = (entries: Array<Record<string, unknown>>) => entries.map(({ seq, time, ...event }) => event)
      expect(strip(await show(file, '--route', 'orders'))).toEqual([
        { type: 'executed', route: 'orders', key, method: 'POST', status: 201, mode: 'enforce' },
        { type: 'replayed', route: 'orders', key, method: 'POST', status: 201, mode: 'enforce' },
        { type: 'no_key', route: 'orders', method: 'POST', status: 201, mode: 'enforce' },
        { type: 'mode_switched', route: 'orders', from: 'enforce', to: 'observe' },
        { type: 'purged', route: 'orders', key, existed: true },
      ])
      expect(strip(await show(file, '--route', 'observed'))).toEqual([
        { type: 'executed', route: 'observed', key, method: 'POST', status: 201, mode: 'observe' },
        { type: 'would_replay', route: 'observed', key, method: 'POST', status: 201, mode: 'observe' },
      ])
      expect((await show(file, '--key', key)).map((entry) => entry.type)).toEqual([
        'executed',
        'replayed',
        'executed',
        'would_replay',
        'purged',
      ])
      // The log holds no key material, and no event in clear.
      const text = readFileSync(file, 'utf8')
      expect(text).not.toContain(keys.slice(3))
      expect(text).not.toContain(key)
      expect(text).not.toContain('mode_switched')
    } finally {
      if (!closed) await gateway.close()
    }
  })

  it('works end to end with SM4-CTR + HMAC-SM3, and verify fails on a changed byte', async () => {
    const { input, file } = config({ alg: 'sm4-ctr-hmac-sm3' })
    const gateway = await createGateway(input)
    const { url } = await gateway.listen()
    const key = `sm4-${Date.now()}`
    await post(`${url}/orders`, key)
    await post(`${url}/orders`, key)
    await gateway.close()
    const entries = readFileSync(file, 'utf8').split('\n').filter(Boolean)
    expect(entries.map((line) => (JSON.parse(line) as { alg?: string }).alg)).toEqual([
      'sm4-ctr-hmac-sm3',
      'sm4-ctr-hmac-sm3',
      undefined, // the final checkpoint
    ])
    expect((await verify(file)).code).toBe(0)
    expect((await show(file)).map((entry) => entry.type)).toEqual(['executed', 'replayed'])

    // The second entry's tag, one character changed (its hash recomputed would still not help: the chain).
    const changed = entries.map((line, i) =>
      i === 1 ? line.replace(/"tag":"(.)/, (_, c) => `"tag":"${c === 'A' ? 'B' : 'A'}`) : line,
    )
    writeFileSync(file, `${changed.join('\n')}\n`)
    const failed = await verify(file)
    expect(failed.code).toBe(1)
    expect(failed.out.at(-1)).toMatch(/^FAILED: the first entry that does not hold is seq 2 /)
  })

  it("counts what a full queue drops with onFull: 'drop'", async () => {
    const { input, file } = config({ queue: { max: 1, onFull: 'drop' } })
    const gateway = await createGateway(input)
    const { adminUrl = '' } = await gateway.listen()
    // Ten events in one tick: the first fills the queue (written once the tick is over), nine are dropped.
    for (let i = 0; i < 10; i++) gateway.setMode('orders', i % 2 === 0 ? 'observe' : 'enforce')
    const { stats } = (await (await admin(adminUrl, '/v1/audit')).json()) as { stats: Record<string, number> }
    expect(stats).toMatchObject({ dropped: 9, refused: 0 })
    await gateway.close()
    expect((await verify(file)).code).toBe(0)
    expect(await show(file)).toHaveLength(1)
  })

  it("refuses, counts and reports what a full queue cannot take with onFull: 'fail'", async () => {
    const { input, file } = config({ queue: { max: 1, onFull: 'fail' } })
    const errors: Error[] = []
    const gateway = await createGateway(input, { onAuditError: (error) => errors.push(error) })
    const { adminUrl = '' } = await gateway.listen()
    for (let i = 0; i < 4; i++) gateway.setMode('orders', i % 2 === 0 ? 'observe' : 'enforce')
    await new Promise((resolve) => setTimeout(resolve, 20))
    const { stats, lastSeq } = (await (await admin(adminUrl, '/v1/audit')).json()) as {
      stats: Record<string, number>
      lastSeq: number
    }
    expect(stats).toMatchObject({ dropped: 0, refused: 3, written: 1 })
    expect(lastSeq).toBe(1)
    expect(errors).toHaveLength(3)
    expect(errors[0]).toBeInstanceOf(AuditQueueFullError)
    await gateway.close()
    expect((await show(file)).map((entry) => entry.type)).toEqual(['mode_switched'])
  })

  it("records only what is not routine with decisions: 'rejections'", async () => {
    const { input, file } = config({ decisions: 'rejections', signingKey: undefined, checkpoint: undefined })
    const gateway = await createGateway(input)
    const { url } = await gateway.listen()
    const key = `rejections-${Date.now()}`
    await post(`${url}/orders`, key) // executed: left out
    await post(`${url}/orders`) // no key: left out
    await post(`${url}/orders`, key) // replayed: kept
    await gateway.close()
    const { code, out } = await idem('audit', 'verify', '--file', file, '--keys', keys)
    expect(code).toBe(0)
    expect(out).toContain('  signed up to: none (no valid checkpoint)')
    expect((await show(file)).map((entry) => entry.type)).toEqual(['replayed'])
  })

  it('records a request that a fail-open route forwarded unprotected (its store down) as failed_open', async () => {
    if (!(await requireRedisBinaries('audit failed_open'))) return
    const redis = await startPrivateRedis()
    const { input, file } = config()
    const gateway = await createGateway({
      ...input,
      stores: { r: { type: 'redis', url: redis.url, prefix: `${isolatedName('idem_audit_fo')}:` } },
      defaults: { store: 'r' },
      routes: [{ name: 'open', match: { methods: ['POST'], path: '/orders' }, onStoreFailure: 'open' }],
    })
    let closed = false
    let down = false
    try {
      const { url } = await gateway.listen()
      const run = Date.now()
      expect((await post(`${url}/orders`, `up-${run}`)).status).toBe(201)
      await redis.kill()
      down = true
      expect((await post(`${url}/orders`, `down-1-${run}`)).status).toBe(201)
      expect((await post(`${url}/orders`, `down-2-${run}`)).status).toBe(201)
      // Back before close: closing the Redis client waits for a Redis to say goodbye to.
      await redis.start()
      down = false
      await gateway.close()
      closed = true
      expect((await verify(file)).code).toBe(0)
      const recorded = (await show(file, '--route', 'open')).map(({ seq, time, ...event }) => event)
      expect(recorded).toEqual([
        { type: 'executed', route: 'open', key: `up-${run}`, method: 'POST', status: 201, mode: 'enforce' },
        ...[1, 2].map((n) => ({
          type: 'failed_open',
          outcome: 'executed',
          route: 'open',
          key: `down-${n}-${run}`,
          method: 'POST',
          status: 201,
          mode: 'enforce',
        })),
      ])
    } finally {
      if (down) await redis.start()
      if (!closed) await gateway.close()
      await redis.stop()
    }
  })

  it('appends each checkpoint to checkpoint.file too: verify --expect-file catches a tail cut with its checkpoint', async () => {
    const kept = join(dir, `checkpoints-${files + 1}.jsonl`)
    const { input, file } = config({ checkpoint: { everyEntries: 2, file: kept } })
    const gateway = await createGateway(input)
    const { url } = await gateway.listen()
    for (let i = 0; i < 5; i++) await post(`${url}/orders`, `kept-${Date.now()}-${i}`)
    await gateway.close()
    // 1-2, cp3, 4-5, cp6, 7, cp8 (at close): each checkpoint also in the kept file.
    const checkpoints = readFileSync(kept, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(checkpoints.map((cp) => cp.upTo)).toEqual([2, 5, 7])
    expect(Object.keys(checkpoints[0] ?? {}).sort()).toEqual(['head', 'sig', 'signer', 'time', 'upTo'])
    const withKept = () =>
      idem('audit', 'verify', '--file', file, '--public-key', `s1=${publicKey}`, '--expect-file', kept)
    expect((await withKept()).code).toBe(0)

    // The last entry and the final checkpoint cut off: the log alone still verifies.
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean)
    writeFileSync(file, `${lines.slice(0, 6).join('\n')}\n`)
    expect((await verify(file)).code).toBe(0)
    const { code, out } = await withKept()
    expect(code).toBe(1)
    expect(out.at(-1)).toContain(
      'the log ends at entry 6 but a checkpoint kept elsewhere covers entry 7: entry 7 is missing (tail truncated?)',
    )
  })

  it('does not start with keys that are missing or wrong, and names the field', async () => {
    const cases: Array<[Partial<NonNullable<GatewayConfigInput['audit']>>, string]> = [
      [{ keys: '' }, 'audit.keys: required'],
      [{ keys: 'k1:c2hvcnQ=' }, 'audit.keys: audit key k1 has 5 bytes'],
      [{ keys: generateAuditKey() }, 'audit.keys: audit key'],
      [{ active: 'k9' }, 'audit.active: no key "k9" in keys (key ids: k1)'],
      [
        { signingKey: { id: 's1', privateKey: join(dir, 'nowhere.pem') } },
        'audit.signingKey.privateKey: checkpoint signer s1: cannot read',
      ],
      [{ signingKey: { id: 's1', privateKey: signing.publicKeyPem } }, 'audit.signingKey.privateKey'],
      [{ postgres: { url: 'postgres://x@127.0.0.1/db' } }, 'audit: give exactly one of file or postgres'],
    ]
    for (const [audit, message] of cases) {
      const error = await createGateway(config(audit).input).then(
        (gateway) => gateway.close().then(() => undefined),
        (e: unknown) => e,
      )
      expect(error, message).toBeInstanceOf(GatewayConfigError)
      expect((error as Error).message).toContain(message)
    }
  })

  it('redacts the keys and the signing key, and keeps the audit section on reload', async () => {
    const { input } = config()
    const gateway: Gateway = await createGateway(input)
    try {
      const shown = JSON.stringify(redactConfig(gateway.config))
      expect(shown).not.toContain(keys.slice(3))
      expect(shown).not.toContain('PRIVATE KEY')
      expect(shown).toContain('"keys":"[redacted]"')
      const changed = { ...input, audit: { ...(input.audit as object), keys: `k1:${generateAuditKey()}` } }
      await expect(gateway.reload(changed as GatewayConfigInput)).rejects.toThrow('audit: cannot change on reload')
    } finally {
      await gateway.close()
    }
  })
})

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describe('a gateway with its audit log in PostgreSQL', () => {
    const table = isolatedName('idem_audit_gw').replace(/[^A-Za-z0-9_]/g, '_')
    afterAll(async () => {
      const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url })
      await pool.query(`DROP TABLE IF EXISTS "${table}"`)
      await pool.end()
    })

    it('writes the table, and idem audit verify and show read it with --postgres', async () => {
      const { input } = config({ file: undefined, sync: undefined, postgres: { url: SERVICES.PostgreSQL.url, table } })
      const gateway = await createGateway(input)
      const { url } = await gateway.listen()
      const key = `pg-${Date.now()}`
      await post(`${url}/orders`, key)
      await post(`${url}/orders`, key)
      await gateway.purge({ route: 'orders', key })
      await gateway.close()
      const source = ['--postgres', SERVICES.PostgreSQL.url, '--table', table, '--keys', keys]
      const verified = await idem('audit', 'verify', ...source, '--public-key', `s1=${publicKey}`)
      expect(verified.code, verified.out.join('\n')).toBe(0)
      expect(verified.out[1]).toMatch(/^ {2}entries: 3, checkpoints: 1, last seq 4 /)
      const { code, out } = await idem('audit', 'show', ...source, '--json', '--type', 'purged')
      expect(code).toBe(0)
      expect(JSON.parse(out[0] as string)).toMatchObject({
        seq: 3,
        type: 'purged',
        route: 'orders',
        key,
        existed: true,
      })
    })
  })
}
