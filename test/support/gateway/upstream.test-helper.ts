// Test infrastructure: the counting upstream (upstream-server.ts next to this file) in a child
// process of its own, through tsx's loader. The gateway's tests and the benchmark put it behind the
// gateway (or nginx) and read how often each request really executed. Stopped by its pid; any
// still running when this process exits are killed. No test framework here: bench code uses it too.

import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { urlLineOf } from '../url-line.test-helper.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const SCRIPT = join(HERE, 'upstream-server.ts')
const REPO = join(HERE, '..', '..', '..')

export interface Executions {
  /** Every POST and PATCH the upstream executed since the start (or the last reset). */
  total: number
  /** The same per key: the `x-test-key` header, else the JSON body's `id`. */
  byKey: Record<string, number>
}

export interface Upstream {
  /** http://127.0.0.1:<port>, no trailing slash. */
  readonly url: string
  readonly pid: number
  /** GET /__executions */
  executions(): Promise<Executions>
  /** POST /__reset */
  reset(): Promise<void>
  /** SIGTERM by pid (SIGKILL after 2 s); resolves once the process has exited. Safe to call twice. */
  stop(): Promise<void>
}

export interface StartUpstreamOptions {
  /** A fixed port on 127.0.0.1; default 0 (any free port). */
  port?: number
  /** Give up after this long without the `{"url"}` line; default 20 s (tsx's first start is slow). */
  timeoutMs?: number
}

const started = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL')
})

export async function startUpstream(options: StartUpstreamOptions = {}): Promise<Upstream> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, String(options.port ?? 0)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  started.add(child)
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      started.delete(child)
      resolve()
    })
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })

  const url = await urlLineOf(child, 'the upstream', options.timeoutMs ?? 20_000, () => stderr)
  const pid = child.pid as number

  return {
    url,
    pid,
    async executions() {
      const response = await fetch(`${url}/__executions`)
      if (!response.ok) throw new Error(`GET /__executions answered ${response.status}`)
      return (await response.json()) as Executions
    },
    async reset() {
      const response = await fetch(`${url}/__reset`, { method: 'POST' })
      await response.arrayBuffer()
      if (!response.ok) throw new Error(`POST /__reset answered ${response.status}`)
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      try {
        process.kill(pid, 'SIGTERM')
      } catch {
        return
      }
      const timer = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }, 2000)
      await exited
      clearTimeout(timer)
    },
  }
}
