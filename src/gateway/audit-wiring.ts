// The gateway's audit log (docs/audit.md): opened from the `audit` section of the configuration,
// fed by the gateway's events (every decided request, every operator action, every breaker
// change), closed after the servers. Recording never decides a request: the decision event is
// emitted once the response has gone, so a full queue with `onFull: fail` cannot turn that
// request into an error; it is counted (`refused` in GET /v1/audit) and reported through `onError`.

import { appendFile } from 'node:fs/promises'
import type { Pool as PgPool } from 'pg'
import { AuditLog, type AuditLogStats } from '../audit/audit-log.js'
import { FileAuditStorage } from '../audit/file-storage.js'
import { keyringFrom, signerFromPem } from '../audit/keys.js'
import { PostgresAuditStorage } from '../audit/postgres-storage.js'
import type { AuditEvent, AuditKeyring, AuditStorage, CheckpointEntry, CheckpointSigner } from '../audit/types.js'
import { GatewayConfigError } from './config/load-config.js'
import type { AuditConfig } from './config/schema.js'
import type { GatewayDecisionEvent, GatewayEvents } from './events.js'

/** Subscribes to one of the gateway's events (Gateway.on). */
export type Subscribe = <K extends keyof GatewayEvents>(
  name: K,
  listener: (event: GatewayEvents[K]) => void,
) => () => void

/** What the admin API shows of the audit log: `GET /v1/audit`. */
export interface GatewayAuditStatus {
  /**
   * The writer's counters, and `refused`: events the log would not take (a full queue with
   * `onFull: fail`), each also reported through onAuditError.
   */
  stats: AuditLogStats & { refused: number }
  /** The sequence number of the last entry written (0 for an empty log). */
  lastSeq: number
}

/** Longest close() waits for the audit storage to take what is queued. */
const CLOSE_TIMEOUT_MS = 10_000

/** Outcomes that `decisions: rejections` leaves out: requests that simply went through. */
const ROUTINE = new Set(['executed', 'no_key', 'forwarded'])

export class GatewayAudit {
  readonly log: AuditLog
  readonly #decisions: AuditConfig['decisions']
  readonly #detach: Array<() => void> = []
  readonly #onError: (error: Error) => void
  /** Ends what was opened for the log besides it (the PostgreSQL pool). */
  readonly #release: (() => Promise<void>) | undefined
  #closed = false
  #refused = 0

  constructor(
    log: AuditLog,
    decisions: AuditConfig['decisions'],
    onError: (error: Error) => void,
    release?: () => Promise<void>,
  ) {
    this.log = log
    this.#decisions = decisions
    this.#onError = onError
    this.#release = release
  }

  status(): GatewayAuditStatus {
    const stats = this.log.stats
    return { stats: { ...stats, refused: this.#refused }, lastSeq: stats.lastSeq }
  }

  /** Record the gateway's events from now on. */
  attach(on: Subscribe): void {
    this.#detach.push(
      on('decision', (event) => {
        const recorded = decisionEvent(event)
        if (this.#decisions === 'rejections' && ROUTINE.has(recorded.type)) return
        this.#record(recorded)
      }),
      on('mode_switched', ({ route, from, to }) => this.#record({ type: 'mode_switched', route, from, to })),
      on('purged', ({ route, key, existed }) => this.#record({ type: 'purged', route, key, existed })),
      on('config_reloaded', ({ file, routes }) =>
        this.#record(compact({ type: 'config_reloaded', file, routes: [...routes] })),
      ),
      on('config_rejected', ({ file, error }) =>
        this.#record(compact({ type: 'config_rejected', file, message: error.message })),
      ),
      on('breaker', ({ store, state, previous }) => this.#record({ type: 'breaker', store, state, previous })),
    )
  }

  #record(event: AuditEvent): void {
    if (this.#closed) return
    // Not awaited: the response has gone already, nothing waits on the log. With onFull 'block'
    // the event waits in the log's memory for room; with 'fail' it is refused, counted and reported.
    this.log.record(event).catch((error: unknown) => {
      this.#refused++
      this.#onError(asError(error))
    })
  }

  /** Stop recording, write what is queued (and a last checkpoint), close the storage. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const detach of this.#detach.splice(0)) detach()
    try {
      // A storage that stays down would hold close() (and the gateway's SIGTERM) for ever: the log
      // gives up after CLOSE_TIMEOUT_MS, and reports (onError) how many events were not written.
      await this.log.close({ timeoutMs: CLOSE_TIMEOUT_MS })
    } finally {
      await this.#release?.().catch(() => {})
    }
  }
}

/**
 * A decision as the audit log keeps it: the outcome, or in observe mode what enforce would have
 * done; `failed_open` (with the outcome beside it) for a request that went through unprotected
 * because the store failed on a fail-open route.
 */
export function decisionEvent(event: GatewayDecisionEvent): AuditEvent {
  const decided =
    event.wouldHave === undefined ? event.outcome : `would_${event.wouldHave === 'replayed' ? 'replay' : 'reject'}`
  const failedOpen = event.failedOpen === true
  return compact({
    type: failedOpen ? 'failed_open' : decided,
    outcome: failedOpen ? decided : undefined,
    route: event.route,
    key: event.key,
    method: event.method,
    status: event.status,
    code: event.code,
    mode: event.mode,
  })
}

/**
 * Open the audit log the configuration describes. A problem with the keys, the signing key or the
 * storage stops the start, as a GatewayConfigError naming the field.
 */
export async function openGatewayAudit(
  config: AuditConfig,
  options: { file?: string; onError?: (error: Error) => void } = {},
): Promise<GatewayAudit> {
  const fail = (path: string, error: unknown): never => {
    throw new GatewayConfigError(options.file, [{ path: `audit.${path}`, message: asError(error).message }])
  }
  let keyring: AuditKeyring
  try {
    keyring = keyringFrom(config.keys, config.alg)
  } catch (error) {
    return fail('keys', error)
  }
  if (config.active !== undefined) {
    if (!keyring.keys.has(config.active)) {
      return fail('active', `no key "${config.active}" in keys (key ids: ${[...keyring.keys.keys()].join(', ')})`)
    }
    keyring = { ...keyring, active: config.active }
  }
  let signer: CheckpointSigner | undefined
  if (config.signingKey !== undefined) {
    try {
      signer = signerFromPem(config.signingKey.id, config.signingKey.privateKey)
    } catch (error) {
      return fail('signingKey.privateKey', error)
    }
  }
  const onError =
    options.onError ?? ((error: Error) => console.error(JSON.stringify({ event: 'audit_error', error: error.message })))

  let storage: AuditStorage
  let pool: PgPool | undefined
  if (config.postgres !== undefined) {
    let pg: typeof import('pg')
    try {
      pg = await import('pg')
    } catch (error) {
      return fail(
        'postgres',
        `the audit log on PostgreSQL needs the pg package: npm install pg (${asError(error).message})`,
      )
    }
    pool = new pg.default.Pool({ connectionString: config.postgres.url, connectionTimeoutMillis: 5_000 })
    // An idle connection the server drops is reported on the pool; unheard, it would crash the process.
    pool.on('error', () => {})
    const postgres = new PostgresAuditStorage({
      client: pool,
      ...(config.postgres.table === undefined ? {} : { table: config.postgres.table }),
    })
    try {
      await postgres.ensureSchema()
    } catch (error) {
      await pool.end().catch(() => {})
      return fail('postgres', `cannot prepare the audit table: ${asError(error).message}`)
    }
    storage = postgres
  } else {
    storage = new FileAuditStorage({ path: config.file as string, sync: config.sync ?? 'always' })
  }

  let log: AuditLog
  try {
    log = await AuditLog.open({
      storage,
      keyring,
      ...(signer === undefined ? {} : { signer }),
      ...(config.checkpoint === undefined
        ? {}
        : {
            checkpoint: compact({
              everyEntries: config.checkpoint.everyEntries,
              everyMs: config.checkpoint.every,
              publish: config.checkpoint.file === undefined ? undefined : checkpointFile(config.checkpoint.file),
            }),
          }),
      ...(config.queue === undefined ? {} : { queue: compact({ ...config.queue }) }),
      onError: (error) => onError(asError(error)),
    })
  } catch (error) {
    await storage.close().catch(() => {})
    await pool?.end().catch(() => {})
    return fail(config.file === undefined ? 'postgres' : 'file', `cannot open the audit log: ${asError(error).message}`)
  }
  const end = pool === undefined ? undefined : () => (pool as PgPool).end()
  return new GatewayAudit(log, config.decisions, onError, end)
}

/** Appends each checkpoint to `file` as a JSON line: what `idem audit verify --expect-file` reads. */
function checkpointFile(file: string): (checkpoint: CheckpointEntry) => Promise<void> {
  return async ({ upTo, head, sig, signer, time }) => {
    await appendFile(file, `${JSON.stringify({ upTo, head, sig, signer, time })}\n`, { mode: 0o600 })
  }
}

/** The object without its undefined fields (the events' JSON stays minimal and exactOptionalPropertyTypes holds). */
function compact<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, inner]) => inner !== undefined)) as never
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
