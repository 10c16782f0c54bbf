// Rigs for the outbox tests: a transaction-mode rig (store, adapter, effects table) per database
// with an outbox table and a `published` table (the child relays' stand-in for a broker), an
// in-memory recording Producer, and the consumer that closes the loop (idem.run keyed by the
// message id, counting its effect in the database).

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Outbox } from '../../../src/outbox/outbox.js'
import type { OutgoingMessage, Producer } from '../../../src/producer/types.js'
import type { SqlDialect } from '../../../src/sql/core/executor.js'
import type { MysqlStore } from '../../../src/stores/mysql/mysql-store.js'
import type { PostgresStore } from '../../../src/stores/postgres/postgres-store.js'
import type { SqliteStore } from '../../../src/stores/sqlite/sqlite-store.js'
import { SERVICES } from '../../services.js'
import { mysqlRig, postgresRig, sqliteRig, type TransactionRig } from '../transaction/transaction-rigs.test-helper.js'

export interface OutboxRig extends TransactionRig {
  outbox: Outbox
  /** The stand-in broker's table, quoted, that child relays insert every publish into. */
  published: string
  /** Run one statement in autocommit (a short transaction of its own). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>
  /** An outbox row's state, read outside any transaction. */
  row(id: string): Promise<{ status: string; attempts: number; last_error: string | null } | undefined>
  /** What a child process needs to reach the same tables. */
  childArgs: string[]
}

export const DATABASES = [
  { name: 'PostgreSQL', port: SERVICES.PostgreSQL.port as number | null, make: () => outboxRig(postgresRig()) },
  { name: 'MariaDB', port: SERVICES.MariaDB.port as number | null, make: () => outboxRig(mysqlRig()) },
  { name: 'SQLite', port: null, make: () => outboxRig(sqliteRig()) },
] as const

/** `made` (a driver's or an ORM's transaction rig) with an outbox table and a `published` table. */
export async function outboxRig(made: Promise<TransactionRig<unknown>>): Promise<OutboxRig> {
  const rig = await made
  const { table, published, childArgs } = names(rig)
  const outbox = new Outbox({ table })
  await outbox.ensureSchema(rig.db)
  const query = (sql: string, params: unknown[] = []) =>
    rig.db.transaction(async (_tx, executor) => (await executor.execute(sql, params)).rows)
  const serial = { postgres: 'bigserial', mysql: 'BIGINT AUTO_INCREMENT', sqlite: 'INTEGER' }[rig.dialect]
  await query(`CREATE TABLE ${published} (n ${serial} PRIMARY KEY, id VARCHAR(255) NOT NULL, payload TEXT NOT NULL)`)
  const t = quoted(rig.dialect, table)
  const p = rig.dialect === 'postgres' ? '$1' : '?'
  return {
    ...rig,
    outbox,
    published,
    query,
    async row(id) {
      const rows = await query(`SELECT status, attempts, last_error FROM ${t} WHERE id = ${p}`, [id])
      const row = rows[0]
      if (row === undefined) return undefined
      return { status: String(row.status), attempts: Number(row.attempts), last_error: row.last_error as string | null }
    },
    childArgs,
    async cleanup() {
      if (rig.dialect === 'mysql') {
        await query(`DROP TABLE IF EXISTS ${t}`)
        await query(`DROP TABLE IF EXISTS ${published}`)
      }
      await rig.cleanup()
    },
  }
}

function names(rig: TransactionRig<unknown>): { table: string; published: string; childArgs: string[] } {
  switch (rig.dialect) {
    case 'postgres': {
      const schema = (rig.store as PostgresStore).names.schema
      const published = `"${schema}"."published"`
      const table = `${schema}.idem_outbox`
      return {
        table,
        published,
        childArgs: ['--url', SERVICES.PostgreSQL.url, '--table', table, '--published', published],
      }
    }
    case 'mysql': {
      const base = (rig.store as MysqlStore).table
      const published = `\`${base}_published\``
      const table = `${base}_outbox`
      return {
        table,
        published,
        childArgs: ['--url', SERVICES.MariaDB.url, '--table', table, '--published', published],
      }
    }
    case 'sqlite': {
      // The rig opened its store on a file path: better-sqlite3 keeps it as the database's name.
      const file = ((rig.store as SqliteStore).db as unknown as { name: string }).name
      return {
        table: 'idem_outbox',
        published: 'published',
        childArgs: ['--file', file, '--table', 'idem_outbox', '--published', 'published'],
      }
    }
  }
}

function quoted(dialect: SqlDialect, table: string): string {
  const q = dialect === 'mysql' ? '`' : '"'
  return table
    .split('.')
    .map((part) => `${q}${part}${q}`)
    .join('.')
}

/** A Producer that keeps what it was asked to publish; `fail` and `beforeConfirm` shape its behaviour. */
export class RecordingProducer implements Producer {
  readonly published: OutgoingMessage[] = []
  readonly attempts: string[] = []

  constructor(
    readonly behaviour: {
      /** An error to reject this message with, or undefined to confirm it. */
      fail?: (message: OutgoingMessage) => Error | undefined
      /** Awaited before the confirmation (a slow or stuck broker). */
      beforeConfirm?: (message: OutgoingMessage) => Promise<void>
    } = {},
  ) {}

  async publish(message: OutgoingMessage): Promise<void> {
    this.attempts.push(message.id)
    await this.behaviour.beforeConfirm?.(message)
    const error = this.behaviour.fail?.(message)
    if (error !== undefined) throw error
    this.published.push(message)
  }
}

/** How many times each id occurs in `ids`. */
export function countById(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
  return counts
}

/**
 * The consumer side: every delivery in order through idem.run keyed by the message id, its effect
 * an increment of the effects row named after the message. Resolves to how many were replays.
 */
export async function consume(
  rig: OutboxRig,
  deliveries: readonly { id: string; payload: unknown }[],
): Promise<number> {
  const idem = rig.idem({ scope: 'outbox-consumer' })
  let replayed = 0
  for (const delivery of deliveries) {
    const result = await idem.run({ key: delivery.id, payload: delivery.payload }, () =>
      rig.db.transaction((_tx, sql) => rig.addEffect(sql, delivery.id)),
    )
    if (result.status === 'replayed') replayed++
  }
  return replayed
}

const root = fileURLToPath(new URL('../../..', import.meta.url))

/** Start `script` (TypeScript, next to this file) in a new Node process through tsx's loader. */
export function spawnTsx(script: string, args: readonly string[]) {
  const path = fileURLToPath(new URL(script, import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 20_000) stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, exited, stderr: () => stderr.trim() }
}
