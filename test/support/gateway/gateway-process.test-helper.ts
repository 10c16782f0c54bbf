// Test infrastructure: the gateway as its operators run it, `idem gateway --config FILE` in a child
// process of its own (through tsx's loader, as `npx tsx src/cli/bin.ts` does, but without npx in
// between so that the pid is the gateway's own and a SIGKILL really kills it). The configuration
// (an object, written as JSON, or YAML text) goes to a temp file that `writeConfig` rewrites for
// reload tests. Every line the process prints is kept: its JSON events on stdout (listening,
// config_reloaded, breaker...) and stderr (config_rejected, crashes), which a failed start quotes.
// Processes still running when this process exits are killed. No test framework here.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
const REPO = join(HERE, '..', '..', '..')
const BIN = join(REPO, 'src', 'cli', 'bin.ts')

/** A token for the admin API of every test gateway (the schema wants at least 16 characters). */
export const ADMIN_TOKEN = 'test-admin-token-0123456789'

export interface GatewayEvent {
  event: string
  [field: string]: unknown
}

export interface GatewayProcess {
  /** http://127.0.0.1:<port> of the proxy. */
  readonly url: string
  /** http://127.0.0.1:<port> of the admin API (the config must have `admin`). */
  readonly adminUrl: string
  readonly pid: number
  /** The config file the process reads (again on SIGHUP). */
  readonly configFile: string
  /** Every JSON line printed on stdout so far, in order. */
  readonly events: readonly GatewayEvent[]
  /** What it printed on stderr so far (the last 16 kB). */
  readonly stderr: string
  /** True once the process has exited. */
  readonly exited: boolean
  /** Send `signal` to the process by its pid (SIGKILL: a crash). Resolves once it has exited for SIGKILL/SIGTERM. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** SIGTERM (SIGKILL after 3 s), wait for the exit and remove the config directory; safe to call twice. */
  stop(): Promise<void>
  /** Rewrite the config file (an object as JSON, or text as is); nothing is reloaded yet. */
  writeConfig(config: object | string): void
  /**
   * SIGHUP, then wait for the process to say how it went: resolves with the `config_reloaded`
   * event, or with `{ event: 'config_rejected', error }` read from stderr.
   */
  reload(timeoutMs?: number): Promise<GatewayEvent>
  /** Call the admin API with the token; the status and the parsed JSON body. */
  // biome-ignore lint/suspicious/noExplicitAny: the admin API's JSON, read field by field by the tests
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>
}

export interface StartGatewayOptions {
  /** Give up after this long without the listening line; default 30 s (tsx's first start is slow). */
  timeoutMs?: number
  /** More environment variables for the process. */
  env?: Record<string, string>
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export async function startGatewayProcess(
  config: object | string,
  options: StartGatewayOptions = {},
): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-gateway-'))
  const configFile = join(dir, typeof config === 'string' ? 'idem.yaml' : 'idem.json')
  const write = (next: object | string) =>
    writeFileSync(configFile, typeof next === 'string' ? next : JSON.stringify(next, null, 2))
  write(config)

  const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'gateway', '--config', configFile], {
    cwd: REPO,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  const pid = child.pid as number
  let exited = false
  let exitReason = ''
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true
      exitReason = `${signal ?? code}`
      running.delete(child)
      resolve()
    })
  })

  const events: GatewayEvent[] = []
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const waiter of waiters) waiter()
  }
  let stdoutRest = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdoutRest += chunk.toString()
    const lines = stdoutRest.split('\n')
    stdoutRest = lines.pop() ?? ''
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      try {
        events.push(JSON.parse(line) as GatewayEvent)
      } catch {
        // not one of the gateway's event lines
      }
    }
    notify()
  })
  let stderr = ''
  let stderrRest = ''
  const stderrLines: string[] = []
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-16_000)
    stderrRest += chunk.toString()
    const lines = stderrRest.split('\n')
    stderrRest = lines.pop() ?? ''
    stderrLines.push(...lines)
    notify()
  })
  child.once('exit', notify)

  /** Resolve with what `check` finds once it finds something; reject when the process exits first or after `timeoutMs`. */
  const waitFor = <T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const attempt = () => {
        const found = check()
        if (found !== undefined) {
          done()
          resolve(found)
        } else if (exited) {
          done()
          reject(new Error(`the gateway (pid ${pid}) exited (${exitReason}) while waiting for ${what}\n${stderr}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`the gateway (pid ${pid}) did not show ${what} within ${timeoutMs} ms\nstderr:\n${stderr}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        waiters.delete(attempt)
      }
      waiters.add(attempt)
      attempt()
    })

  const stop = async () => {
    if (!exited) {
      try {
        process.kill(pid, 'SIGTERM')
      } catch {}
      const timer = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }, 3000)
      await exitedPromise
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }

  let listening: GatewayEvent
  try {
    listening = await waitFor(
      'its {"event":"listening"} line',
      () => events.find((e) => e.event === 'listening'),
      options.timeoutMs ?? 30_000,
    )
  } catch (error) {
    await stop()
    throw error
  }
  const url = listening.url as string
  const adminUrl = (listening.adminUrl as string | null) ?? ''

  return {
    url,
    adminUrl,
    pid,
    configFile,
    events,
    get stderr() {
      return stderr
    },
    get exited() {
      return exited
    },
    async kill(signal = 'SIGKILL') {
      if (exited) return
      process.kill(pid, signal)
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exitedPromise
    },
    stop,
    writeConfig: write,
    async reload(timeoutMs = 15_000) {
      const seenEvents = events.length
      const seenStderr = stderrLines.length
      process.kill(pid, 'SIGHUP')
      return waitFor(
        'a config_reloaded or config_rejected line after SIGHUP',
        () => {
          const reloaded = events.slice(seenEvents).find((e) => e.event === 'config_reloaded')
          if (reloaded !== undefined) return reloaded
          const line = stderrLines.slice(seenStderr).find((l) => l.startsWith('{') && l.includes('"config_rejected"'))
          return line === undefined ? undefined : (JSON.parse(line) as GatewayEvent)
        },
        timeoutMs,
      )
    },
    async admin(method, path, body) {
      const response = await fetch(`${adminUrl}/${path.replace(/^\//, '')}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = JSON.parse(text)
      } catch {}
      return { status: response.status, body: parsed }
    },
  }
}

/** `count` gateways on one configuration, started at once; if one fails, the others are stopped. */
export async function startGatewayProcesses(
  count: number,
  config: object | string,
  options: StartGatewayOptions = {},
): Promise<GatewayProcess[]> {
  const settled = await Promise.allSettled(Array.from({ length: count }, () => startGatewayProcess(config, options)))
  const failed = settled.find((outcome) => outcome.status === 'rejected')
  if (failed === undefined) return settled.map((outcome) => (outcome as PromiseFulfilledResult<GatewayProcess>).value)
  await Promise.all(settled.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.stop() : undefined)))
  throw failed.reason
}

/** The admin section every test gateway gets: a free port on loopback, the shared token. */
export const ADMIN = { listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN } as const
/** The proxy's listen section: a free port on loopback. */
export const LISTEN = { host: '127.0.0.1', port: 0 } as const

export interface Answer {
  status: number
  headers: Headers
  text: string
}

/**
 * One request through a gateway: `key` as Idempotency-Key (when given), `body` as JSON. Rejects
 * only when the connection fails (no answer at all), which the tests count as a failure.
 */
export async function send(
  base: string,
  path: string,
  options: { method?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await fetch(base + path, {
    method: options.method ?? 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.key === undefined ? {} : { 'idempotency-key': `"${options.key}"` }),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}
