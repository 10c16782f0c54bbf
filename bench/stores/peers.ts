// The peers, configured as fairly as their designs allow, each on its own documented Redis client:
//
// - Powertools idempotency 2 (CachePersistenceLayer on @redis/client 6): no local cache (as ours);
//   SHA-256 (ours too) over the canonical JSON of the whole event { key, payload }, which is its
//   idempotency key when no eventKeyJmesPath is set. That does the canonical-JSON-and-hash work
//   our fingerprint does. Its own payload validation (payloadValidationJmesPath) cannot be used
//   with CachePersistenceLayer: the completed record it writes drops the payload hash, so every
//   duplicate then fails with IdempotencyValidationError (checked below, every run).
// - @node-idempotency/core with @node-idempotency/storage-adapter-redis (redis 4): its HTTP-style
//   onRequest / onResponse around the function, the fingerprint being its hash of the body.

import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency'
import { CachePersistenceLayer } from '@aws-lambda-powertools/idempotency/cache'
import { Idempotency as NodeIdempotency } from '@node-idempotency/core'
import { RedisStorageAdapter } from '@node-idempotency/storage-adapter-redis'
import { createClient } from '@redis/client'
import { LEASE_MS, mustNotRun, PAYLOAD, VALUE } from '../lib/fixtures.js'

export interface Peer {
  name: string
  /** Run the idempotent function for `key` (with the benchmark's payload); resolves to its value. */
  run(key: string, fn: () => Promise<unknown>, payload?: unknown): Promise<unknown>
  close(): Promise<void>
}

/** The part of an @redis/client 6 client the raw floors use. */
export interface RedisV6 {
  set(key: string, value: string, options: { PX: number; NX?: boolean }): Promise<string | null>
  get(key: string): Promise<string | null>
  quit(): Promise<unknown>
}

export async function powertools(
  url: string,
  keyPrefix: string,
  ttlMs: number,
  options: { payloadValidation?: boolean } = {},
): Promise<Peer & { client: RedisV6 }> {
  const connected = await createClient({ url }).connect()
  connected.on('error', () => {})
  const client = connected as unknown as RedisV6
  const persistenceStore = new CachePersistenceLayer({ client: connected as never })
  const config = new IdempotencyConfig({
    hashFunction: 'sha256',
    expiresAfterSeconds: Math.round(ttlMs / 1000),
    useLocalCache: false,
    ...(options.payloadValidation ? { eventKeyJmesPath: 'key', payloadValidationJmesPath: 'payload' } : {}),
  })
  // Outside Lambda there is no remaining time: this gives in-progress records a 30 s lease, like
  // ours, and spares a console.warn per call.
  config.registerLambdaContext({ getRemainingTimeInMillis: () => LEASE_MS } as never)
  // One wrapped function per function body; makeIdempotent takes the event as the first argument.
  const wrapped = new Map<() => Promise<unknown>, (event: unknown) => Promise<unknown>>()
  return {
    name: 'Powertools',
    client,
    run(key, fn, payload = PAYLOAD) {
      let idempotent = wrapped.get(fn)
      if (idempotent === undefined) {
        idempotent = makeIdempotent(async (_event: unknown) => fn(), { persistenceStore, config, keyPrefix })
        wrapped.set(fn, idempotent)
      }
      return idempotent({ key, payload })
    },
    close: async () => {
      await client.quit()
    },
  }
}

export async function nodeIdempotency(
  url: string,
  cacheKeyPrefix: string,
  ttlMs: number,
): Promise<Peer & { adapter: RedisStorageAdapter }> {
  const adapter = new RedisStorageAdapter({ url })
  await adapter.connect()
  const idempotency = new NodeIdempotency(adapter, { cacheKeyPrefix, cacheTTLMS: ttlMs })
  return {
    name: '@node-idempotency/core',
    adapter,
    async run(key, fn, payload = PAYLOAD) {
      const request = {
        headers: { 'idempotency-key': key },
        path: '/charges',
        method: 'POST',
        body: payload as Record<string, unknown>,
      }
      const stored = await idempotency.onRequest(request)
      if (stored !== undefined) return stored.body
      const value = await fn()
      await idempotency.onResponse(request, { body: value })
      return value
    },
    close: () => adapter.disconnect(),
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * Fails loudly unless `peer` deduplicates: its function runs once per key, duplicates get the
 * stored value, and of 8 concurrent first calls of one key exactly one runs. Returns what it does
 * with the same key and another payload (a fact for the report, not a failure).
 */
export async function verifyPeer(peer: Peer, keyBase: string): Promise<string> {
  let executions = 0
  const counted = async () => {
    executions++
    return VALUE
  }
  const keys = Array.from({ length: 10 }, (_, i) => `${keyBase}-${i}`)
  for (const key of keys) {
    if (!same(await peer.run(key, counted), VALUE)) throw new Error(`bench: ${peer.name} lost the value`)
  }
  for (const key of keys) {
    if (!same(await peer.run(key, async () => mustNotRun()), VALUE)) {
      throw new Error(`bench: ${peer.name}: a duplicate did not get the stored value`)
    }
  }
  if (executions !== keys.length) throw new Error(`bench: ${peer.name} ran ${executions} times for ${keys.length} keys`)
  const slow = async () => {
    executions++
    await new Promise((resolve) => setTimeout(resolve, 50))
    return VALUE
  }
  const race = await Promise.allSettled(Array.from({ length: 8 }, () => peer.run(`${keyBase}-race`, slow)))
  const won = race.filter((r) => r.status === 'fulfilled').length
  if (executions !== keys.length + 1 || won !== 1) {
    throw new Error(`bench: ${peer.name}: 8 concurrent calls of one key ran ${executions - keys.length} times`)
  }
  try {
    const before = executions
    await peer.run(keys[0] as string, counted, { ...PAYLOAD, amount: 1 })
    return executions > before ? 'executes it again' : 'replays the first result'
  } catch (error) {
    return `rejects it (${(error as Error).name}: ${(error as Error).message})`
  }
}

/** Whether Powertools' payload validation works with CachePersistenceLayer: its duplicate, tried once. */
export async function powertoolsValidationDuplicate(url: string, keyPrefix: string, ttlMs: number): Promise<string> {
  const peer = await powertools(url, keyPrefix, ttlMs, { payloadValidation: true })
  try {
    await peer.run('validation-check', async () => VALUE)
    const dup = await peer.run('validation-check', async () => mustNotRun())
    return same(dup, VALUE) ? 'replays the stored value' : 'returns something else'
  } catch (error) {
    return `fails: ${(error as Error).name}: ${(error as Error).message}`
  } finally {
    await peer.close()
  }
}
