// Test infrastructure: a throwaway redis-server on its own loopback port, with no persistence, that a
// test can kill and restart (an empty Redis comes back, as after a crash without AOF or RDB).
// Used by the restart test here and reusable by other stores' tests (give each file its own port).

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface RedisProcess {
  readonly host: '127.0.0.1'
  readonly port: number
  /** The temp directory holding its pid file and log. */
  readonly dir: string
  /** Start it (again) and wait until it answers PING. */
  start(): Promise<void>
  /** SIGKILL, as a crash: with no persistence, everything it held is gone. */
  kill(): Promise<void>
  /** kill() then start(): the same port, an empty server. */
  restart(): Promise<void>
  /** Kill it and remove its directory; safe to call twice, and after a failed start. */
  stop(): Promise<void>
}

export interface StartRedisOptions {
  /** A directory to run in (shared by a Cluster's nodes); default a new temp directory, removed by stop(). */
  dir?: string
  /** More redis-server arguments, e.g. the cluster ones. */
  args?: string[]
}

/** Servers this process started, killed at exit so that a failed test run leaves none behind. */
const started = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL')
})

/** Start a redis-server on 127.0.0.1:`port` (default 7201), replacing a leftover Redis on that port. */
export async function startRedis(port = 7201, options: StartRedisOptions = {}): Promise<RedisProcess> {
  const ownDir = options.dir === undefined
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `idem-redis-${port}-`))
  const logFile = join(dir, `redis-${port}.log`)
  // A child of this process (not --daemonize), so that killing it also reaps it.
  // biome-ignore format: one flag and its value per line
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--logfile', logFile,
    ...(options.args ?? []),
  ]
  let child: ChildProcess | undefined
  const server: RedisProcess = {
    host: '127.0.0.1',
    port,
    dir,
    async start() {
      await clearPort(port)
      const current = spawn('redis-server', args, { stdio: 'ignore' })
      current.unref()
      child = current
      started.add(current)
      let failure: Error | undefined
      current.once('error', (error) => {
        failure = error
      })
      current.once('exit', (code, signal) => {
        started.delete(current)
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : ''
        failure ??= new Error(`redis-server on port ${port} exited (${signal ?? code}):\n${log}`)
      })
      await waitFor(`redis-server on port ${port} to answer PING`, async () => {
        if (failure !== undefined) throw failure
        return (await cli(port, 'PING')) === 'PONG'
      })
    },
    async kill() {
      const current = child
      child = undefined
      if (current === undefined || current.exitCode !== null || current.signalCode !== null) return
      const exited = new Promise((resolve) => current.once('exit', resolve))
      current.kill('SIGKILL')
      await exited
    },
    async restart() {
      await server.kill()
      await server.start()
    },
    async stop() {
      await server.kill()
      if (ownDir) rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    await server.start()
  } catch (error) {
    await server.stop()
    throw error
  }
  return server
}

/** Run redis-cli against 127.0.0.1:`port`; its trimmed output, or null when it cannot connect. */
export async function cli(port: number, ...args: string[]): Promise<string | null> {
  try {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 })
    return stdout.trim()
  } catch {
    return null
  }
}

/** A Redis left on `port` by a crashed earlier run is shut down; anything else there is an error. */
async function clearPort(port: number): Promise<void> {
  if ((await cli(port, 'PING')) !== 'PONG') return
  await cli(port, 'SHUTDOWN', 'NOSAVE')
  await waitFor(`the leftover Redis on port ${port} to shut down`, async () => (await cli(port, 'PING')) !== 'PONG')
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}
