// Private server instances for the chaos run, on loopback ports 16000–16999, each in its own
// temporary directory: the run may kill and restart them, which it must never do to the shared
// services on the standard ports. Every process started here is stopped by its pid on exit.

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const live = new Set<ChildProcess>()
const dirs = new Set<string>()

/** SIGKILL every server still running and remove their directories: on exit, also after a failure. */
export function killAllServers(): void {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  live.clear()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** A server the run owns: started, killed (SIGKILL, the crash), restarted on the same data. */
export interface PrivateServer {
  readonly name: string
  readonly port: number
  start(): Promise<void>
  /** SIGKILL, then start again on the same directory; resolves once it accepts connections. */
  restart(): Promise<void>
  /** SIGKILL, delete every data file, start again empty (only servers that can: Redis). */
  restartEmpty?(): Promise<void>
  stop(): Promise<void>
}

export abstract class Managed implements PrivateServer {
  abstract readonly name: string
  readonly port: number
  protected readonly dir: string
  #child: ChildProcess | undefined
  #log = ''
  /** How long a start may take to open the port (a JVM on a loaded machine takes longer). */
  protected readonly startTimeoutMs: number = 30_000

  constructor(port: number, prefix: string) {
    this.port = port
    this.dir = mkdtempSync(join(tmpdir(), `idem-chaos-${prefix}-`))
    dirs.add(this.dir)
  }

  protected abstract command(): { file: string; args: string[]; uid?: number; gid?: number }

  async start(): Promise<void> {
    const { file, args, uid, gid } = this.command()
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir, uid, gid })
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#log = (this.#log + chunk).slice(-2000)
    })
    live.add(child)
    child.once('exit', () => live.delete(child))
    this.#child = child
    try {
      await Promise.race([
        waitForPort(this.port, this.startTimeoutMs),
        exited(child).then(() => {
          throw new Error(`${this.name} exited at start: ${this.#log.trim()}`)
        }),
      ])
    } catch (error) {
      child.kill('SIGKILL')
      throw error
    }
  }

  async restart(): Promise<void> {
    await this.stop('SIGKILL')
    await this.start()
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child
    if (child === undefined) return
    this.#child = undefined
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited(child)
    clearTimeout(timer)
  }
}

/**
 * A private Redis with an append-only file synced on every write: a SIGKILL restart keeps every
 * acknowledged write, as a Redis deployed as a store or broker of record must.
 */
export class PrivateRedis extends Managed {
  readonly name = 'redis'
  constructor(port: number) {
    super(port, 'redis')
  }
  protected command() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '']
    args.push('--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no', '--loglevel', 'warning')
    return { file: 'redis-server', args }
  }
  /**
   * The crash of a Redis that kept nothing (no persistence, or a failover to a replica that had not
   * received the writes): SIGKILL, delete its append-only files and snapshot, start empty.
   */
  async restartEmpty(): Promise<void> {
    await this.stop('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
    mkdirSync(this.dir, { mode: 0o700 })
    await this.start()
  }
}

/** A private NATS server with JetStream on file storage: a SIGKILL restart keeps the streams. */
export class PrivateNats extends Managed {
  readonly name = 'nats'
  constructor(port: number) {
    super(port, 'nats')
  }
  protected command() {
    return { file: 'nats-server', args: ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir] }
  }
}

/**
 * A private MariaDB (mariadb-install-db, root without a password on loopback, database `chaos`).
 * Restarts are SIGKILLs: InnoDB crash recovery on the next start.
 */
export class PrivateMariadb extends Managed {
  readonly name = 'mariadb'
  #installed = false
  constructor(port: number) {
    super(port, 'mariadb')
  }
  protected command() {
    const args = [
      '--no-defaults',
      `--datadir=${join(this.dir, 'data')}`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
    ]
    args.push(`--socket=${join(this.dir, 'sock')}`, '--user=root', '--skip-log-bin', '--max-connections=300')
    return { file: '/usr/sbin/mariadbd', args }
  }
  override async start(): Promise<void> {
    if (!this.#installed) {
      await promisify(execFile)('mariadb-install-db', [
        '--no-defaults',
        `--datadir=${join(this.dir, 'data')}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--user=root',
      ])
      this.#installed = true
    }
    await super.start()
    const { default: mysql } = await import('mysql2/promise')
    const connection = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root' })
    try {
      await connection.query('CREATE DATABASE IF NOT EXISTS chaos')
    } finally {
      await connection.end()
    }
  }
}

/**
 * A private Mosquitto with persistence. Mosquitto writes its persistence file on shutdown and on
 * autosave, not on every message, so a SIGKILL would lose queued messages it had acknowledged:
 * restart() is graceful (SIGTERM, then start). Even so it loses a confirmed message now and then
 * across a restart (docs/reliability.md), so the run does not restart it (faults.ts).
 */
export class PrivateMosquitto extends Managed {
  readonly name = 'mosquitto'
  constructor(port: number) {
    super(port, 'mosquitto')
    const config = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${this.dir}/`,
      'autosave_interval 1',
      'autosave_on_changes true',
      // No cap on what a session (a stalled or restarting worker) may have queued.
      'max_queued_messages 0',
      'log_dest none',
    ]
    writeFileSync(join(this.dir, 'mosquitto.conf'), `${config.join('\n')}\n`)
  }
  protected command() {
    return { file: 'mosquitto', args: ['-c', join(this.dir, 'mosquitto.conf')] }
  }
  override async restart(): Promise<void> {
    await this.stop('SIGTERM')
    await this.start()
  }
}

function postgresBin(name: string): string {
  for (const dir of ['/usr/local/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin']) {
    if (existsSync(join(dir, name))) return join(dir, name)
  }
  throw new Error(`${name} not found`)
}

/** The uid and gid of the system user `postgres`: PostgreSQL refuses to run as root. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}

/**
 * A private PostgreSQL cluster (initdb, trust authentication, database `chaos`). Restarts are
 * SIGKILLs of the postmaster: crash recovery from the WAL on the next start, as after a power cut.
 */
export class PrivatePostgres extends Managed {
  readonly name = 'postgres'
  readonly #user = postgresUser()
  constructor(port: number) {
    super(port, 'pg')
    const data = join(this.dir, 'data')
    mkdirSync(data)
    if (this.#user !== undefined) {
      chownSync(this.dir, this.#user.uid, this.#user.gid)
      chownSync(data, this.#user.uid, this.#user.gid)
    }
    execFileSync(postgresBin('initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'], {
      stdio: 'ignore',
      ...this.#user,
    })
  }
  protected command() {
    const args = [
      '-D',
      join(this.dir, 'data'),
      '-p',
      String(this.port),
      '-k',
      this.dir,
      '-c',
      'listen_addresses=127.0.0.1',
    ]
    // fsync=off costs no durability here: the faults kill processes, never the machine, so the
    // page cache survives them all; it keeps a throwaway cluster from slowing the benchmarks beside it.
    args.push('-c', 'fsync=off', '-c', 'max_connections=200', '-c', 'log_min_messages=fatal')
    return { file: postgresBin('postgres'), args, ...this.#user }
  }
  /**
   * The crash of the whole server: SIGQUIT is PostgreSQL's immediate shutdown (every backend dies
   * at once, nothing is flushed or checkpointed), so the next start runs crash recovery. A SIGKILL
   * of the postmaster alone would leave its backends holding the shared memory.
   */
  override async restart(): Promise<void> {
    await this.stop('SIGQUIT')
    await this.start()
  }
  override async start(): Promise<void> {
    await super.start()
    // The first start creates the database; later starts find it.
    await createDatabase(this.port)
  }
}

async function createDatabase(port: number): Promise<void> {
  const { default: pg } = await import('pg')
  for (let i = 0; ; i++) {
    // A pg client connects once: a fresh one per attempt.
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
    try {
      await client.connect()
    } catch (error) {
      // "the database system is starting up" while it replays its WAL.
      if (i > 100) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
      continue
    }
    try {
      const found = await client.query("SELECT 1 FROM pg_database WHERE datname = 'chaos'")
      if (found.rowCount === 0) await client.query('CREATE DATABASE chaos')
      return
    } finally {
      await client.end()
    }
  }
}
