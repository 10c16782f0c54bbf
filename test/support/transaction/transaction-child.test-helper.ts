// Child processes for the transaction-mode crash and racer tests: how the parent starts one (a
// one-off bundle of the TypeScript worker, or tsx), and how a child reaches, over connections of
// its own, the database of a rig the parent created (the same store table and `effects` table).

import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Idempotency } from '../../../src/core/idempotency.js'
import type { SqlDatabase, SqlExecutor } from '../../../src/sql/core/executor.js'
import type { MysqlStore } from '../../../src/stores/mysql/mysql-store.js'
import type { PostgresStore } from '../../../src/stores/postgres/postgres-store.js'
import type { SqliteStore } from '../../../src/stores/sqlite/sqlite-store.js'
import type { TransactionRig } from './transaction-rigs.test-helper.js'

/** Where a rig keeps its records and effects, in a form a child process can be handed. */
export type Target =
  | { dialect: 'postgres'; url: string; schema: string }
  | { dialect: 'mysql'; url: string; table: string }
  | { dialect: 'sqlite'; file: string }

/** `rig`'s target; `urls` are the servers' (the child does not load test/services: it pulls in Vitest). */
export function targetOf(rig: TransactionRig, urls: { postgres: string; mysql: string }): Target {
  switch (rig.dialect) {
    case 'postgres':
      return { dialect: 'postgres', url: urls.postgres, schema: (rig.store as PostgresStore).names.schema }
    case 'mysql':
      return { dialect: 'mysql', url: urls.mysql, table: (rig.store as MysqlStore).table }
    case 'sqlite':
      // better-sqlite3 keeps the path the database was opened with as its name.
      return { dialect: 'sqlite', file: ((rig.store as SqliteStore).db as unknown as { name: string }).name }
  }
}

/** What both sides agree a transaction on `key` carries, so the parent's retry matches the child's fingerprint. */
export const payloadOf = (key: string) => ({ key, amount: 10 })

/** The connection a child works on, from inside the child. */
export interface Attached {
  idem: Idempotency
  /** The driver adapter; `beforeCommit` runs (and may never return) just before COMMIT goes out. */
  database(beforeCommit?: () => void): SqlDatabase<unknown>
  /** The rig's business write: add 1 to effect `id`, on the transaction `sql` runs in. */
  addEffect(sql: SqlExecutor, id: string): Promise<void>
  /** The same write in autocommit, outside any transaction (for the planted-bug check). */
  addEffectOutside(id: string): Promise<void>
  /** The server's id of the connection `sql` runs on (pg backend pid, MariaDB thread id); null for SQLite. */
  session(sql: SqlExecutor): Promise<number | null>
  close(): Promise<void>
}

export interface AttachOptions {
  /** Pool size (PostgreSQL, MariaDB); one connection to the file for SQLite. */
  connections: number
  scope: string
}

/** Connect to `target` the way the rig does, but from this process and with no idle timeouts. */
export async function attach(target: Target, options: AttachOptions): Promise<Attached> {
  const idemOf = (store: ConstructorParameters<typeof Idempotency>[0]['store']) =>
    new Idempotency({ store, scope: options.scope })
  switch (target.dialect) {
    case 'postgres': {
      const { default: pg } = await import('pg')
      const { PostgresStore } = await import('../../../src/stores/postgres/postgres-store.js')
      const { fromPg } = await import('../../../src/sql/pg/pg-database.js')
      const pool = new pg.Pool({
        connectionString: target.url,
        max: options.connections,
        idleTimeoutMillis: 0,
      })
      pool.on('error', () => {})
      const effects = `"${target.schema}"."effects"`
      const upsert = `INSERT INTO ${effects} AS e (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = e.n + 1`
      return {
        idem: idemOf(new PostgresStore({ client: pool, schema: target.schema })),
        database(beforeCommit) {
          if (beforeCommit === undefined) return fromPg(pool)
          return fromPg({
            get totalCount() {
              return pool.totalCount
            },
            query: (text: string, values?: unknown[]) => pool.query(text, values),
            async connect() {
              const client = await pool.connect()
              return {
                query(text: string, values?: unknown[]) {
                  // COMMIT alone, or at the end of the completion's text (one round trip).
                  if (/(^|;\s*)COMMIT$/.test(text)) beforeCommit()
                  return client.query(text, values)
                },
                release: (destroy?: boolean | Error) => client.release(destroy),
              }
            },
          })
        },
        addEffect: async (sql, id) => void (await sql.execute(upsert, [id])),
        addEffectOutside: async (id) => void (await pool.query(upsert, [id])),
        session: async (sql) => Number((await sql.execute('SELECT pg_backend_pid() AS s', [])).rows[0]?.s),
        close: () => pool.end(),
      }
    }
    case 'mysql': {
      const { default: mysql } = await import('mysql2/promise')
      const { MysqlStore } = await import('../../../src/stores/mysql/mysql-store.js')
      const { fromMysql2 } = await import('../../../src/sql/mysql2/mysql2-database.js')
      const pool = mysql.createPool({
        uri: target.url,
        connectionLimit: options.connections,
        maxIdle: options.connections,
        idleTimeout: 3_600_000,
      })
      const upsert = `INSERT INTO \`${target.table}_effects\` (id, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1`
      return {
        idem: idemOf(new MysqlStore({ client: pool, table: target.table })),
        database(beforeCommit) {
          if (beforeCommit === undefined) return fromMysql2(pool)
          return fromMysql2({
            query: (sql: string, values?: unknown[]) => pool.query(sql, values),
            async getConnection() {
              const connection = await pool.getConnection()
              return {
                query(sql: string, values?: unknown[]) {
                  // The completion procedure commits with the completion (one round trip).
                  if (/^CALL `[^`]+_complete_v\d+`\(/.test(sql)) beforeCommit()
                  return connection.query(sql, values)
                },
                beginTransaction: () => connection.beginTransaction(),
                commit() {
                  beforeCommit()
                  return connection.commit()
                },
                rollback: () => connection.rollback(),
                release: () => connection.release(),
                destroy: () => connection.destroy(),
              }
            },
          })
        },
        addEffect: async (sql, id) => void (await sql.execute(upsert, [id])),
        addEffectOutside: async (id) => void (await pool.query(upsert, [id])),
        session: async (sql) => Number((await sql.execute('SELECT CONNECTION_ID() AS s', [])).rows[0]?.s),
        close: () => pool.end(),
      }
    }
    case 'sqlite': {
      const { default: Database } = await import('better-sqlite3')
      const { SqliteStore } = await import('../../../src/stores/sqlite/sqlite-store.js')
      const { fromBetterSqlite3 } = await import('../../../src/sql/better-sqlite3/better-sqlite3-database.js')
      const db = new Database(target.file)
      // Racers queue on the file's one write lock, up to 20 of them: wait long rather than fail.
      const store = new SqliteStore({ client: db, busyTimeout: 30_000 })
      const upsert = 'INSERT INTO effects (id, n) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1'
      return {
        idem: idemOf(store),
        database(beforeCommit) {
          if (beforeCommit === undefined) return fromBetterSqlite3(db)
          return fromBetterSqlite3({
            prepare: (sql: string) => db.prepare(sql),
            exec(sql: string) {
              if (sql === 'COMMIT') beforeCommit()
              return db.exec(sql)
            },
            get inTransaction() {
              return db.inTransaction
            },
          })
        },
        addEffect: async (sql, id) => void (await sql.execute(upsert, [id])),
        addEffectOutside: async (id) => void db.prepare(upsert).run(id),
        session: async () => null,
        close: async () => void db.close(),
      }
    }
  }
}

const root = fileURLToPath(new URL('../../..', import.meta.url))

/** How to start a child script: the arguments for node before the script's own. */
export interface ChildScript {
  readonly node: readonly string[]
  /** Remove what prepareChild wrote. */
  dispose(): void
}

/**
 * Ready `script` (TypeScript, next to this file) to run in child processes. The tests start dozens
 * of them, and through tsx's loader each spends about 0.45 s of CPU starting up; bundled once
 * with esbuild (which tsx runs on, so it is installed wherever tsx is), about 0.15 s. The bundle
 * goes under node_modules/.cache so that its imports of pg, mysql2 and better-sqlite3 resolve.
 * Without esbuild, tsx's loader it is.
 */
export async function prepareChild(script: string): Promise<ChildScript> {
  const source = fileURLToPath(new URL(script, import.meta.url))
  const outfile = join(root, 'node_modules', '.cache', 'idem-tests', `${basename(source, '.ts')}-${process.pid}.mjs`)
  try {
    const { build } = await import('esbuild')
    await build({
      entryPoints: [source],
      outfile,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'silent',
    })
    return { node: [outfile], dispose: () => rmSync(outfile, { force: true }) }
  } catch {
    return { node: ['--import', 'tsx', source], dispose: () => {} }
  }
}

/** Start `script` with `args`, stdin, stdout and stderr piped to the parent and, when `ipc`, a message channel. */
export function spawnChild(script: ChildScript, args: readonly string[], ipc = false): ChildProcess {
  return spawn(process.execPath, [...script.node, ...args], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe', ...(ipc ? (['ipc'] as const) : [])],
  })
}

/** The child's stderr so far (for error messages), capped. */
export function collectStderr(child: ChildProcess): () => string {
  let text = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    if (text.length < 20_000) text += chunk
  })
  return () => text.trim()
}

/** SIGKILL `child` and wait until it has exited; resolves to the signal that ended it. */
export async function killHard(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.signalCode
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  child.kill('SIGKILL')
  return exited
}
