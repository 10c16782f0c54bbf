// A redis-server of the benchmark's own on a spare loopback port, without persistence, as a child
// process (never --daemonize), so that millions of records never land in the shared Redis.
// It refuses ports that something already listens on, and is killed at exit whatever happens.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

export interface PrivateRedis {
  port: number
  client: Redis
  stop(): Promise<void>
}

const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.setTimeout(1000, () => done(true)) // no answer at all: assume taken, try the next port
    socket.once('error', () => done(false))
    socket.connect(port, '127.0.0.1', () => done(true))
  })
}

/** Start redis-server on the first free port from `preferred` (at most 20 tried). */
export async function startPrivateRedis(preferred: number): Promise<PrivateRedis> {
  let port = preferred
  while (await listening(port)) {
    if (++port >= preferred + 20) throw new Error(`no free port in ${preferred}-${preferred + 19} for a private Redis`)
  }
  const dir = mkdtempSync(join(tmpdir(), `idem-bench-redis-${port}-`))
  // biome-ignore format: one flag and its value per line
  const child = spawn('redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
  ], { stdio: 'ignore' })
  children.add(child)
  let failure: Error | undefined
  child.once('error', (error) => {
    failure = error
  })
  child.once('exit', (code, signal) => {
    children.delete(child)
    failure ??= new Error(`redis-server on port ${port} exited (${signal ?? code})`)
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  while (!(await listening(port))) {
    if (failure !== undefined || Date.now() > deadline) {
      await stop()
      throw failure ?? new Error(`redis-server on port ${port} did not start within 10 s`)
    }
    await sleep(20)
  }
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 2 })
  client.on('error', () => {})
  await client.ping()
  return {
    port,
    client,
    stop: async () => {
      client.disconnect()
      await stop()
    },
  }
}
