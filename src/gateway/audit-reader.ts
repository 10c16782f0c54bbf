// The gateway's own audit log read back for the admin API (GET /v1/audit/entries and /verify):
// with the keys of its configuration, through a storage of its own that only reads.

import { createPublicKey } from 'node:crypto'
import { FileAuditStorage } from '../audit/file-storage.js'
import { keyringFrom, signerFromPem } from '../audit/keys.js'
import { openEntry } from '../audit/seal.js'
import type { AuditKeyring, AuditStorage, AuditVerification, CheckpointVerifier } from '../audit/types.js'
import { verifyAuditLog } from '../audit/verify.js'
import type { AuditConfig } from './config/schema.js'

/** An entry of GET /v1/audit/entries: its place and time in the log, and the decrypted event. */
export interface AuditEntryView {
  seq: number
  time: string
  type?: string
  route?: string
  key?: string
  code?: string
  status?: number
  /** Set instead of the event when the entry cannot be opened (a bad tag, an unknown key id). */
  error?: string
  [detail: string]: unknown
}

/** GET /v1/audit/verify: verifyAuditLog's answer, and whether a torn last line is an append in progress. */
export type AuditVerificationView = AuditVerification & {
  /**
   * True when the only oddity is a last line still being written: the log is read while the
   * gateway appends to it, so a reader can meet the first bytes of an append. It is not counted.
   */
  beingWritten?: boolean
}

export interface EntriesQuery {
  limit: number
  route: string | undefined
  type: string | undefined
}

export interface AuditReader {
  entries(query: EntriesQuery): Promise<AuditEntryView[]>
  verify(): Promise<AuditVerificationView>
}

/**
 * Reads the gateway's own log back with the keys of its configuration (what openGatewayAudit
 * opened it with): a storage of its own that only ever reads — the file storage's `read()` streams
 * the file's lines and never takes the writer's handle; for PostgreSQL, a pool of one connection.
 * Not flushed first: a flush waits for a storage that may be down, and an append may start right
 * after it anyway; a torn last line is an append in progress, reported as `beingWritten`.
 */
export function auditReaderOf(config: AuditConfig): AuditReader {
  const keyring: AuditKeyring = keyringFrom(config.keys, config.alg)
  let verifier: CheckpointVerifier | undefined
  if (config.signingKey !== undefined) {
    const signer = signerFromPem(config.signingKey.id, config.signingKey.privateKey)
    verifier = { publicKeys: new Map([[signer.id, createPublicKey(signer.privateKey)]]) }
  }
  let storage: Promise<AuditStorage> | undefined
  const open = (): Promise<AuditStorage> => {
    if (storage === undefined) {
      const opening = openReadStorage(config)
      // A failure (pg not installed) is answered now and tried again next time.
      opening.catch(() => {
        storage = undefined
      })
      storage = opening
    }
    return storage
  }

  return {
    async entries({ limit, route, type }) {
      const kept: AuditEntryView[] = []
      for await (const item of readOrEmpty(await open())) {
        if ('torn' in item || item.kind !== 'entry') continue
        let view: AuditEntryView
        try {
          view = { ...openEntry(item, keyring), seq: item.seq, time: item.time }
        } catch (error) {
          view = { seq: item.seq, time: item.time, error: (error as Error).message }
        }
        if (route !== undefined && view.route !== route) continue
        if (type !== undefined && view.type !== type) continue
        kept.push(view)
        if (kept.length > limit) kept.shift()
      }
      return kept.reverse()
    },
    async verify() {
      const result: AuditVerificationView = await verifyAuditLog(readOrEmpty(await open()), {
        keyring,
        ...(verifier === undefined ? {} : { verifier }),
      })
      // verifyAuditLog reports a torn item only when it is the very last one (else it is firstBad).
      if (result.ok && result.tornTail !== undefined) result.beingWritten = true
      return result
    },
  }
}

async function openReadStorage(config: AuditConfig): Promise<AuditStorage> {
  if (config.postgres === undefined) return new FileAuditStorage({ path: config.file as string, sync: 'none' })
  const [pg, { PostgresAuditStorage }] = await Promise.all([import('pg'), import('../audit/postgres-storage.js')])
  const pool = new pg.default.Pool({
    connectionString: config.postgres.url,
    connectionTimeoutMillis: 5_000,
    max: 1,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
  })
  pool.on('error', () => {})
  return new PostgresAuditStorage({
    client: pool,
    ...(config.postgres.table === undefined ? {} : { table: config.postgres.table }),
  })
}

/** The storage's items; a log file not created yet (nothing recorded) is an empty log. */
async function* readOrEmpty(storage: AuditStorage): AsyncIterable<StoredItem> {
  try {
    yield* storage.read()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

type StoredItem = AuditStorage['read'] extends () => AsyncIterable<infer T> ? T : never
