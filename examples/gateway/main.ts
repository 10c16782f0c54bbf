// The idempotency gateway in front of a service nobody wants to touch: starts the legacy billing
// service (billing.ts), puts the gateway in front of it with idem.yaml, and shows that a payment
// retried 3 times charges once, that the observed route only counts what it would have replayed,
// that switching it to enforce (`idem mode`) makes the next duplicate a replay, a rate limit, and
// `idem stats`; every decision and the mode switch go to an encrypted, signed audit log, which
// `idem audit verify` checks at the end. Run it: npx tsx examples/gateway/main.ts (SQLite and the
// audit log in the temp directory, no server).

import { randomUUID } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateSigningKeyPair } from 'idem/audit'
import { createGatewayFromFile } from 'idem/gateway'
// What `npx idem` runs: the CLI, here called in this process with the same arguments.
import { main as idem } from '../../src/cli/main.js'
import { startBilling } from './billing.js'

export interface GatewayExampleResult {
  charges: number
  orders: number
  refunds: number
  /** Each check that did not hold; empty when the example showed what it says. */
  failures: string[]
}

export async function runGatewayExample(log: (line: string) => void = console.log): Promise<GatewayExampleResult> {
  const billing = await startBilling()
  const run = join(tmpdir(), `idem-gateway-example-${randomUUID()}`)
  const db = `${run}.db`
  // The audit log's checkpoint signing key, made for this run (`idem audit keygen` makes one for good):
  // the gateway reads the private key, `idem audit verify` needs only the public one.
  const auditLog = `${run}-audit.jsonl`
  const signingKey = `${run}-audit-signing.pem`
  const publicKey = `${run}-audit-public.pem`
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair()
  writeFileSync(signingKey, privateKeyPem, { mode: 0o600 })
  writeFileSync(publicKey, publicKeyPem)
  const temporary = [db, `${db}-wal`, `${db}-shm`, auditLog, signingKey, publicKey]
  // idem.yaml reads these (${NAME:-default}); the admin token and the audit key keep their defaults
  // unless IDEM_ADMIN_TOKEN and IDEM_AUDIT_KEYS are set.
  Object.assign(process.env, {
    UPSTREAM_URL: billing.url,
    IDEM_DB: db,
    IDEM_PORT: '0',
    IDEM_ADMIN_PORT: '0',
    IDEM_AUDIT_FILE: auditLog,
    IDEM_AUDIT_SIGNING_KEY: signingKey,
  })
  let gateway: Awaited<ReturnType<typeof createGatewayFromFile>>
  try {
    gateway = await createGatewayFromFile(fileURLToPath(new URL('./idem.yaml', import.meta.url)))
  } catch (error) {
    await billing.close()
    for (const file of temporary) rmSync(file, { force: true })
    throw error
  }
  const failures: string[] = []
  const check = (ok: boolean, failure: string) => ok || failures.push(failure)
  try {
    const { url, adminUrl = '' } = await gateway.listen()
    const admin = ['--admin', adminUrl, '--token', gateway.config.admin?.token ?? '']
    log(`legacy billing on ${billing.url}, gateway on ${url}, admin API on ${adminUrl}`)
    const post = (path: string, body: unknown, key?: string) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-api-client': 'shop-frontend',
          ...(key === undefined ? {} : { 'idempotency-key': key }),
        },
        body: JSON.stringify(body),
      })
    const shown = async (response: Response) => {
      const text = await response.text()
      const replayed = response.headers.get('idempotent-replayed') === 'true' ? ' (replayed)' : ''
      const problem = response.headers.get('content-type') === 'application/problem+json'
      return `${response.status}${replayed}${problem ? ` ${JSON.parse(text).type}` : ''}`
    }

    // payments, enforce: the client retries after a timeout; only the fingerprinted fields must match.
    const payment = randomUUID()
    const answers: string[] = []
    for (let attempt = 1; attempt <= 4; attempt++) {
      const body = { customer: 'cus_42', amount: 4999, currency: 'EUR', sentAt: new Date().toISOString() }
      answers.push(await shown(await post('/payments', body, payment)))
    }
    log(
      `payments (enforce): 1 try + 3 retries with one key -> ${answers.join(', ')}; cards charged: ${billing.counts.charges}`,
    )
    check(billing.counts.charges === 1, `the payment charged ${billing.counts.charges} times, not once`)
    check(
      answers.slice(1).every((a) => a === '201 (replayed)'),
      `the retries got ${answers.slice(1).join(', ')}`,
    )
    const noKey = await shown(await post('/payments', { customer: 'cus_42', amount: 10, currency: 'EUR' }))
    log(`payments (enforce): no Idempotency-Key -> ${noKey}; cards charged: ${billing.counts.charges}`)
    check(noKey === '400 urn:idem:problem:missing-key', `a payment without a key got ${noKey}`)

    // orders, observe: everything is forwarded, and the gateway counts what enforce would have done.
    const order = randomUUID()
    const observed: string[] = []
    for (let i = 0; i < 2; i++) observed.push(await shown(await post('/orders/ord-7', { items: ['book'] }, order)))
    const wouldHave = gateway.summary().find((route) => route.name === 'orders')?.stats.observed.replayed
    log(
      `orders (observe): one order sent twice -> ${observed.join(', ')}; orders created: ${billing.counts.orders}; would have replayed: ${wouldHave}`,
    )
    check(billing.counts.orders === 2 && wouldHave === 1, 'observe mode should forward both and count 1 replay')
    const metrics = await (
      await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${admin[3]}` } })
    ).text()
    const line = metrics.split('\n').find((l) => l.startsWith('idem_gateway_observed_total{route="orders"'))
    log(line ?? 'idem_gateway_observed_total: no sample for orders')
    check(line?.endsWith(' 1') === true, `idem_gateway_observed_total for orders: ${line}`)

    // The rollout: observe said the duplicates would be replayed, so switch to enforce at once.
    log('$ idem mode orders enforce')
    check((await idem(['mode', 'orders', 'enforce', ...admin])) === 0, 'idem mode failed')
    const enforced = await shown(await post('/orders/ord-7', { items: ['book'] }, order))
    log(`orders (enforce): the same order again -> ${enforced}; orders created: ${billing.counts.orders}`)
    check(
      enforced === '201 (replayed)' && billing.counts.orders === 2,
      `after the switch the duplicate got ${enforced}`,
    )

    // refunds: 2 requests per minute per client, counted in the store (SQLite: in this process).
    const refunds: string[] = []
    for (let i = 1; i <= 3; i++) refunds.push(await shown(await post('/refunds', { charge: 'ch_1' }, randomUUID())))
    log(`refunds (2 per minute): 3 refunds -> ${refunds.join(', ')}; refunds paid: ${billing.counts.refunds}`)
    check(refunds[2] === '429 urn:idem:problem:rate-limited', `the third refund got ${refunds[2]}`)

    log('$ idem stats')
    check((await idem(['stats', ...admin])) === 0, 'idem stats failed')

    // Closing the gateway writes what the audit log still queues and signs a last checkpoint;
    // then the log is checked as an auditor would: keys from the environment, the public key only.
    await gateway.close()
    const { keys, signingKey: signer } = gateway.config.audit ?? { keys: '', signingKey: undefined }
    log(
      '$ idem audit verify --file <temp>/…-audit.jsonl --keys $IDEM_AUDIT_KEYS --public-key example=<temp>/…-public.pem',
    )
    const verified = await idem([
      'audit',
      'verify',
      '--file',
      auditLog,
      '--keys',
      keys,
      '--public-key',
      `${signer?.id}=${publicKey}`,
    ])
    check(verified === 0, `idem audit verify exited ${verified}: the audit log does not hold`)
    log('$ idem audit show --file <temp>/…-audit.jsonl --keys $IDEM_AUDIT_KEYS --route orders')
    const read = await idem(['audit', 'show', '--file', auditLog, '--keys', keys, '--route', 'orders'])
    check(read === 0, `idem audit show exited ${read}`)
    return { ...billing.counts, failures }
  } finally {
    await gateway.close()
    await billing.close()
    for (const file of temporary) rmSync(file, { force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { failures } = await runGatewayExample()
  if (failures.length > 0) {
    console.error(`The gateway example did not do what it says:\n  ${failures.join('\n  ')}`)
    process.exitCode = 1
  }
}
