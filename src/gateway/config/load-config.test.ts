import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayConfigError, loadConfig, parseConfig, redactConfig, validateConfig } from './load-config.js'

const SECRET = 'a-signature-secret-of-32-characters!'
const JWT_SECRET = 'a-jwt-secret-that-is-32-characters-long'

const VALID = `
# Three routes, one of each kind.
listen:
  port: 8080
upstream:
  url: http://127.0.0.1:3000
  timeout: 10s
admin:
  listen: { port: 9090 }
  token: \${IDEM_ADMIN_TOKEN}
stores:
  main:
    type: redis
    url: redis://:\${REDIS_PASSWORD:-devpassword}@localhost:6379/0
  local:
    type: sqlite
    path: /var/lib/idem/idem.db
defaults:
  store: main
  ttl: 12h
routes:
  - name: payments
    match: { path: /payments, methods: [post] }
    key: { body: payment.id }
    required: true
    fingerprint:
      headers: [X-Tenant]
      body: [amount, currency]
    rateLimit: { requests: 100, per: 1m, store: local }
  - name: orders
    match: { path: /orders/:id/* }
    mode: observe
    lease: 500ms
  - name: refunds
    match: { path: /refunds }
    store: local
    onStoreFailure: open
    signature:
      secret: "${SECRET}"
      window: 2m
    principal:
      jwt:
        secret: "${JWT_SECRET}"
        issuer: https://auth.example.com
        audience: payments-api
`

const ENV = { IDEM_ADMIN_TOKEN: 'an-admin-token-of-enough-length' }

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idem-gateway-config-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function writeConfig(name: string, text: string): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

/** The GatewayConfigError that loading `text` from a file throws. */
async function refusal(text: string, env: NodeJS.ProcessEnv = ENV): Promise<GatewayConfigError> {
  const file = await writeConfig(`config-${Math.random().toString(36).slice(2)}.yaml`, text)
  const error = await loadConfig(file, env).then(
    () => undefined,
    (thrown: unknown) => thrown,
  )
  if (!(error instanceof GatewayConfigError)) throw new Error(`expected a GatewayConfigError, got ${String(error)}`)
  expect(error.file).toBe(file)
  // Every line of the message names the file, so that each reads on its own in a log.
  for (const line of error.message.split('\n')) expect(line.startsWith(`${file}: `)).toBe(true)
  return error
}

/** VALID with `search` replaced by `replacement` (which must be there). */
function edit(search: string, replacement: string): string {
  expect(VALID).toContain(search)
  return VALID.replace(search, replacement)
}

describe('loadConfig: a valid file', () => {
  it('parses three routes with durations in ms, defaults filled in and env references replaced', async () => {
    const file = await writeConfig('idem.yaml', VALID)
    const config = await loadConfig(file, ENV)

    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(config.upstream).toEqual({
      url: 'http://127.0.0.1:3000',
      timeout: 10_000,
      connectTimeout: 5_000,
      connections: 128,
    })
    expect(config.admin).toEqual({ listen: { host: '127.0.0.1', port: 9090 }, token: ENV.IDEM_ADMIN_TOKEN })
    expect(config.stores.main).toEqual({ type: 'redis', url: 'redis://:devpassword@localhost:6379/0' })
    expect(config.breaker).toEqual({ failures: 5, halfOpenAfter: 5_000 })
    expect(config.defaults).toEqual({
      mode: 'enforce',
      store: 'main',
      key: { header: 'Idempotency-Key' },
      required: false,
      ttl: 43_200_000,
      lease: 30_000,
      onStoreFailure: 'closed',
    })
    expect(config.metrics).toBe(true)

    const [payments, orders, refunds] = config.routes
    expect(payments).toEqual({
      name: 'payments',
      match: { path: '/payments', methods: ['POST'] },
      key: { body: 'payment.id' },
      required: true,
      fingerprint: { headers: ['x-tenant'], body: ['amount', 'currency'] },
      rateLimit: { requests: 100, per: 60_000, store: 'local' },
    })
    expect(orders).toEqual({
      name: 'orders',
      match: { path: '/orders/:id/*', methods: ['POST', 'PATCH'] },
      mode: 'observe',
      lease: 500,
    })
    expect(refunds?.signature).toEqual({ secret: SECRET, window: 120_000 })
    expect(refunds?.principal).toEqual({
      jwt: {
        secret: JWT_SECRET,
        issuer: 'https://auth.example.com',
        audience: 'payments-api',
        header: 'authorization',
      },
    })
  })

  it('reads JSON too', () => {
    const json = JSON.stringify({
      listen: { port: 8080 },
      upstream: { url: 'https://api.internal' },
      stores: { main: { type: 'memory' } },
      routes: [{ name: 'all', match: { path: '/*' }, store: 'main' }],
    })
    const config = parseConfig(json, 'idem.json')
    expect(config.routes[0]?.match.methods).toEqual(['POST', 'PATCH'])
    expect(config.defaults.ttl).toBe(86_400_000)
  })

  it('reads an unquoted reference as YAML would read the value written there, a quoted one as text', () => {
    const text = `
listen:
  port: \${PORT}
upstream: { url: "http://127.0.0.1:\${PORT}" }
admin:
  listen: { port: 0 }
  token: "\${TOKEN}"
stores: {}
`
    const config = parseConfig(text, 'idem.yaml', { PORT: '8081', TOKEN: '1234567890123456' })
    expect(config.listen.port).toBe(8081)
    expect(config.upstream.url).toBe('http://127.0.0.1:8081')
    expect(config.admin?.token).toBe('1234567890123456')
  })

  it('uses the default of a :- reference when the variable is unset or empty, and reads $${ as a literal', () => {
    const text = `
listen: { port: 1 }
upstream: { url: "http://\${HOST:-localhost}:3000" }
stores:
  main: { type: sqlite, path: "/data/$\${literal}/\${DIR:-x}" }
`
    const config = parseConfig(text, 'idem.yaml', { DIR: '' })
    expect(config.upstream.url).toBe('http://localhost:3000')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text the escape stands for
    expect(config.stores.main).toEqual({ type: 'sqlite', path: '/data/${literal}/x' })
  })
})

describe('loadConfig: invalid files are refused with the file and the field', () => {
  it('a missing file, with the OS reason', async () => {
    const file = join(dir, 'missing.yaml')
    await expect(loadConfig(file)).rejects.toThrowError(
      `${file}: cannot read the file: ENOENT: no such file or directory`,
    )
  })

  it('a YAML syntax error, with its line and column', async () => {
    const error = await refusal(edit('  timeout: 10s', '  timeout: 10s: 5s'))
    expect(error.issues).toEqual([
      { path: '', message: 'line 7, column 12: Nested mappings are not allowed in compact mappings' },
    ])
  })

  it('a document that is not a mapping', async () => {
    const list = await refusal('- listen: 1\n- upstream: 2\n')
    expect(list.issues).toEqual([
      { path: '', message: 'expected a mapping of settings (listen, upstream, stores, routes, ...); found a list' },
    ])
    const empty = await refusal('# nothing\n')
    expect(empty.message).toContain('the document is empty')
  })

  it('an alias to an anchor that is not there, or aliases that expand past the limit', async () => {
    const missing = await refusal(`${VALID}\nmetrics: *nowhere\n`)
    expect(missing.issues).toEqual([
      { path: '', message: expect.stringMatching(/^cannot resolve the document: .*nowhere/) },
    ])
    const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
    for (const name of 'bcdefgh')
      laughs.push(
        `${name}: &${name} [${Array(10)
          .fill(`*${String.fromCharCode(name.charCodeAt(0) - 1)}`)
          .join(', ')}]`,
      )
    const expanded = await refusal(laughs.join('\n'))
    expect(expanded.issues[0]?.message).toMatch(/^cannot resolve the document: /)
  })

  it('an unknown top-level key, with the likely intended one', async () => {
    const error = await refusal(`${VALID}\nmetrix: false\n`)
    expect(error.issues).toEqual([{ path: '', message: 'unknown key "metrix" (did you mean "metrics"?)' }])
  })

  it('an unknown key inside a route, with the keys allowed there', async () => {
    const error = await refusal(edit('    mode: observe', '    mode: observe\n    cache: true'))
    expect(error.issues).toHaveLength(1)
    expect(error.issues[0]?.path).toBe('routes[1]')
    expect(error.issues[0]?.message).toMatch(/^unknown key "cache" \(allowed here: name, match, mode, store, /)
  })

  it('a missing upstream', async () => {
    const error = await refusal(edit('upstream:\n  url: http://127.0.0.1:3000\n  timeout: 10s\n', ''))
    expect(error.issues).toEqual([{ path: 'upstream', message: 'required' }])
  })

  it('an upstream.url that is not http', async () => {
    const error = await refusal(edit('url: http://127.0.0.1:3000', 'url: ftp://127.0.0.1:3000'))
    expect(error.issues).toEqual([{ path: 'upstream.url', message: 'must be an http:// or https:// URL' }])
  })

  it('a duration that is not one', async () => {
    const error = await refusal(edit('timeout: 10s', 'timeout: 5 minutes'))
    expect(error.issues).toHaveLength(1)
    expect(error.issues[0]?.path).toBe('upstream.timeout')
    expect(error.issues[0]?.message).toContain('"5 minutes"')
    expect(error.message).toContain(
      ': upstream.timeout: Invalid duration "5 minutes": use milliseconds or a string like',
    )
  })

  it('a mode that is not one of the modes', async () => {
    const error = await refusal(edit('mode: observe', 'mode: watch'))
    expect(error.message).toMatch(/: routes\[1\]\.mode: Invalid option: expected one of "off"\|"observe"\|"enforce"$/)
  })

  it('two routes with one name', async () => {
    const error = await refusal(edit('- name: orders', '- name: payments'))
    expect(error.issues).toEqual([{ path: 'routes[1].name', message: '"payments" is used by an earlier route' }])
  })

  it('a route naming a store that does not exist', async () => {
    const error = await refusal(edit('    store: local\n    onStoreFailure', '    store: locl\n    onStoreFailure'))
    expect(error.issues).toEqual([{ path: 'routes[2].store', message: 'no store named "locl" (stores: main, local)' }])
  })

  it('a rate limit on a store that does not exist', async () => {
    const error = await refusal(edit('per: 1m, store: local', 'per: 1m, store: shared'))
    expect(error.issues).toEqual([
      { path: 'routes[0].rateLimit.store', message: 'no store named "shared" (stores: main, local)' },
    ])
  })

  it('a JWT with both a secret and a public key', async () => {
    const error = await refusal(
      edit(
        '        issuer: https',
        '        publicKey: /etc/idem/jwt.pem\n        algorithms: [ES256]\n        issuer: https',
      ),
    )
    expect(error.issues).toEqual([
      { path: 'routes[2].principal.jwt', message: 'give exactly one of secret or publicKey' },
    ])
  })

  it('a JWT with a public key and no algorithms', async () => {
    const error = await refusal(edit(`        secret: "${JWT_SECRET}"`, '        publicKey: /etc/idem/jwt.pem'))
    expect(error.issues).toEqual([
      { path: 'routes[2].principal.jwt.algorithms', message: 'required with publicKey, e.g. [ES256] or [EdDSA]' },
    ])
  })

  it('an unknown key inside the JWT settings of a principal', async () => {
    const error = await refusal(edit('        audience:', '        audiance:'))
    expect(error.issues).toEqual([
      { path: 'routes[2].principal.jwt', message: 'unknown key "audiance" (did you mean "audience"?)' },
    ])
  })

  it('an admin token that is too short', async () => {
    const error = await refusal(VALID, { IDEM_ADMIN_TOKEN: 'short' })
    expect(error.issues).toEqual([{ path: 'admin.token', message: 'must be at least 16 characters' }])
  })

  it('an environment variable that is not set, at the field that uses it', async () => {
    const error = await refusal(VALID, {})
    expect(error.issues).toEqual([{ path: 'admin.token', message: 'environment variable IDEM_ADMIN_TOKEN is not set' }])
  })

  it('a port out of range', async () => {
    const error = await refusal(edit('port: 8080', 'port: 70000'))
    expect(error.issues).toEqual([
      { path: 'listen.port', message: 'must be a port number from 0 to 65535 (0: any free port)' },
    ])
  })

  it('a store URL with the wrong protocol', async () => {
    const error = await refusal(edit('url: redis://', 'url: http://'))
    expect(error.issues).toEqual([{ path: 'stores.main.url', message: 'must be a redis:// or rediss:// URL' }])
  })

  it('a store of an unknown type', async () => {
    const error = await refusal(edit('type: sqlite', 'type: sqlit'))
    expect(error.issues).toEqual([
      { path: 'stores.local.type', message: 'expected one of "memory"|"sqlite"|"redis"|"postgres"|"mysql"' },
    ])
  })

  it('every problem at once, one line each', async () => {
    const error = await refusal(edit('port: 8080', 'port: "8080"').replace('mode: observe', 'mode: watch'), {})
    expect(error.issues.map((issue) => issue.path)).toEqual(['admin.token', 'listen.port', 'routes[1].mode'])
    expect(error.message.split('\n')).toHaveLength(3)
    expect(error.issues[1]?.message).toBe('expected number, got string "8080"')
  })
})

describe('validateConfig', () => {
  it('gives the same errors for a config built in code, naming no file when given none', () => {
    const attempt = () => validateConfig({ listen: { port: 1 }, stores: {}, routes: [{ name: 'a' }] })
    expect(attempt).toThrowError(GatewayConfigError)
    expect(attempt).toThrowError(
      ['gateway config: upstream: required', 'gateway config: routes[0].match: required'].join('\n'),
    )
  })

  it('refuses what is not an object', () => {
    expect(() => validateConfig(42, 'x.json')).toThrowError('x.json: expected object, got number 42')
  })
})

describe('redactConfig', () => {
  it('replaces tokens, secrets and store passwords, and changes nothing else', () => {
    const config = parseConfig(VALID, 'idem.yaml', { ...ENV, REDIS_PASSWORD: 'hunter2' })
    const shown = JSON.stringify(redactConfig(config))
    for (const secret of [ENV.IDEM_ADMIN_TOKEN, 'hunter2', SECRET, JWT_SECRET]) expect(shown).not.toContain(secret)
    expect(redactConfig(config)).toMatchObject({
      admin: { token: '[redacted]' },
      stores: { main: { url: 'redis://:[redacted]@localhost:6379/0' }, local: { path: '/var/lib/idem/idem.db' } },
      routes: [
        { name: 'payments' },
        { name: 'orders' },
        { signature: { secret: '[redacted]', window: 120_000 }, principal: { jwt: { secret: '[redacted]' } } },
      ],
    })
    // The original is untouched.
    expect(config.admin?.token).toBe(ENV.IDEM_ADMIN_TOKEN)
  })

  it('redacts a password given as a query parameter and keeps the user name', () => {
    const config = validateConfig({
      listen: { port: 1 },
      upstream: { url: 'http://up' },
      stores: {
        pg: { type: 'postgres', url: 'postgres://app:s3cret@db:5432/idem?password=other&sslmode=require' },
        redis: { type: 'redis', url: 'redis://localhost:6379' },
      },
    })
    expect(redactConfig(config)).toMatchObject({
      stores: {
        pg: { url: 'postgres://app:[redacted]@db:5432/idem?password=[redacted]&sslmode=require' },
        redis: { url: 'redis://localhost:6379' },
      },
    })
  })
})
