// Stored results encrypted at rest, a key rotation, and an HTTP API whose principals are hashed
// with a secret: what a dump of the store shows, and what each step replays.
// Run it: npx tsx examples/encryption.ts (in memory; no server needed).

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { type EncryptionOptions, generateEncryptionKey, Idempotency, MemoryStore } from 'idem'
import { withIdempotency } from 'idem/http'

export async function encryptionTour() {
  // Keys come from your secret manager; generateEncryptionKey() makes one (32 random bytes, base64).
  const k1 = generateEncryptionKey()
  const k2 = generateEncryptionKey()
  const store = new MemoryStore() // RedisStore, PostgresStore…: the same, they keep the stored string
  const log: string[] = []

  // 1. Encrypted under k1: the store holds `e1:k1:<base64>`, never the card or the amount.
  const before: EncryptionOptions = { keys: { k1 }, current: 'k1' }
  const payments = new Idempotency({ store, scope: 'payments', encryption: before })
  const charge = async () => ({ chargeId: 'ch_1', card: '4242 4242 4242 4242', amount: 4200 })
  await payments.run({ key: 'order-1', payload: { amount: 4200 } }, charge)
  const stored = (await store.get(payments.recordId('order-1')))?.result ?? ''
  log.push(`stored: ${stored.slice(0, 6)}… (${stored.length} bytes, card visible: ${stored.includes('4242')})`)

  // 2. Rotation: k2 becomes current, k1 stays listed until the last record written under it expires.
  const rotated = new Idempotency({ store, scope: 'payments', encryption: { keys: { k1, k2 }, current: 'k2' } })
  const old = await rotated.run({ key: 'order-1', payload: { amount: 4200 } }, charge)
  log.push(`order-1 under k1 after the rotation: ${old.status}`)
  await rotated.run({ key: 'order-2', payload: { amount: 990 } }, charge)
  log.push(`order-2 written under: ${(await store.get(rotated.recordId('order-2')))?.result?.slice(0, 6)}`)

  // 3. k1 removed too early: a typed error, nothing runs again, the record is left as it is.
  const k2Only = new Idempotency({ store, scope: 'payments', encryption: { keys: { k2 }, current: 'k2' } })
  const refused = await k2Only.run({ key: 'order-1', payload: { amount: 4200 } }, charge).catch((e) => e)
  log.push(`order-1 without k1: ${refused.code} (key id ${refused.keyId})`)

  // 4. HTTP: responses encrypted, principals hashed with HMAC-SHA-256 under a secret of their own.
  const handler = withIdempotency(
    {
      store,
      encryption: { keys: { k2 }, current: 'k2' },
      principalSecret: process.env.PRINCIPAL_SECRET ?? generateEncryptionKey(),
    },
    (_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ id: 'ord_7', iban: 'DE89 3704 0044 0532 0130 00' }))
    },
  )
  const server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`
  const post = () =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: 'Bearer tok_1', 'idempotency-key': 'k-1', 'content-type': 'application/json' },
      body: '{"item":7}',
    })
  const first = await post()
  const firstBody = await first.text()
  const again = await post()
  const againBody = await again.text()
  log.push(
    `HTTP retry: ${again.status}, replayed ${again.headers.get('idempotent-replayed')}, same body ${againBody === firstBody}`,
  )
  await new Promise((resolve) => server.close(resolve))
  return log
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const line of await encryptionTour()) console.log(line)
}
