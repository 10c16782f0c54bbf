// The scenario: one payment message, three deliveries, each to a consumer process of its own.
// The first is killed right after the provider charged the card; the second takes over once the
// lease lapses and calls the provider again; the third is replayed from Idem's record.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { recordId } from 'idem'
import { SqliteStore } from 'idem/sqlite'
import { type Charged, type ChargeMessage, type ChargeOptions, SCOPE } from './consumer.js'
import { type ReceivedRequest, startStubProvider } from './stub-provider.js'

const CONSUMER = fileURLToPath(new URL('./consumer-process.ts', import.meta.url))
/** Where tsx finds the tsconfig that maps 'idem' to the sources. */
const REPO = fileURLToPath(new URL('../..', import.meta.url))

export const MESSAGE: ChargeMessage = {
  id: 'msg-pay-2026-0042',
  body: { customerId: 'cus_7', amount: 12_000, currency: 'eur' },
}

export type DeliveryOutcome =
  | { outcome: 'killed'; providerCalls: number }
  | ({ outcome: 'executed' | 'replayed'; providerCalls: number } & Charged)

export interface ChargeReport {
  keys: NonNullable<ChargeOptions['keys']>
  deliveries: DeliveryOutcome[]
  /** Idem's record as the killed consumer left it. */
  afterCrash: { state: string; attempt: number; leaseMs: number } | undefined
  /** Everything the provider received, and what it charged. */
  requests: ReceivedRequest[]
  distinctKeys: number
  charges: number
}

export async function chargeThroughCrash(keys: ChargeReport['keys'] = 'derived'): Promise<ChargeReport> {
  const provider = await startStubProvider()
  const dir = mkdtempSync(join(tmpdir(), 'idem-third-party-'))
  const db = join(dir, 'idem.db')
  const deliver = async (crash: boolean): Promise<DeliveryOutcome> => {
    const before = provider.requests.length
    const result = await consumerProcess(db, provider.url, keys, crash)
    const providerCalls = provider.requests.length - before
    return result === 'killed' ? { outcome: 'killed', providerCalls } : { ...result, providerCalls }
  }
  try {
    const deliveries = [await deliver(true)]
    const afterCrash = await inspectRecord(db)
    deliveries.push(await deliver(false), await deliver(false))
    return {
      keys,
      deliveries,
      afterCrash,
      requests: [...provider.requests],
      distinctKeys: new Set(provider.requests.map((r) => r.idempotencyKey)).size,
      charges: provider.charges,
    }
  } finally {
    await provider.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function inspectRecord(db: string): Promise<ChargeReport['afterCrash']> {
  const store = new SqliteStore({ client: db })
  try {
    const record = await store.get(recordId(SCOPE, MESSAGE.id))
    if (record === null || record === undefined) return undefined
    return { state: record.state, attempt: record.attempt, leaseMs: (record.leaseUntil ?? 0) - record.updatedAt }
  } finally {
    await store.close()
  }
}

/** Run consumer-process.ts once (a real process, run by tsx) and read its outcome. */
function consumerProcess(
  db: string,
  providerUrl: string,
  keys: ChargeReport['keys'],
  crash: boolean,
): Promise<'killed' | ({ outcome: 'executed' | 'replayed' } & Charged)> {
  const args = [
    '--import',
    'tsx',
    CONSUMER,
    '--db',
    db,
    '--provider',
    providerUrl,
    '--message',
    JSON.stringify(MESSAGE),
  ]
  args.push('--keys', keys, ...(crash ? ['--crash-after-call'] : []))
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      if (crash && signal === 'SIGKILL') return resolve('killed')
      if (code !== 0 || crash) {
        return reject(new Error(`consumer process ended with ${signal ?? `code ${code}`}: ${stderr.trim()}`))
      }
      const { status, value } = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as {
        status: 'executed' | 'replayed'
        value: Charged
      }
      resolve({ outcome: status, ...value })
    })
  })
}
