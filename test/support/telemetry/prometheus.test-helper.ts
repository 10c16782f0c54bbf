// Test infrastructure for idem/metrics against real Prometheus tools (Debian's `prometheus`
// package): `promtool check metrics` on an exposition, and a throwaway Prometheus server on a free
// loopback port in 19000-19999 that scrapes one target every second, with a query helper. The
// server is a child of this process, stopped by its pid; its data lives in a temp directory.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** From PATH (Debian installs them in /usr/bin). */
const PROMETHEUS = 'prometheus'
const PROMTOOL = 'promtool'

/** Undefined when `binary --version` runs, else why not. */
export function missingBinary(binary: 'prometheus' | 'promtool'): Promise<string | undefined> {
  const path = binary === 'prometheus' ? PROMETHEUS : PROMTOOL
  return new Promise((resolve) => {
    execFile(path, ['--version'], { timeout: 10_000 }, (error) =>
      resolve(error === null ? undefined : `${path} cannot be run (${error.message.split('\n')[0]})`),
    )
  })
}

/** What `promtool check metrics` says of `exposition`: its exit code and output. */
export function promtoolCheck(exposition: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code: code ?? -1, output }))
    child.stdin.end(exposition)
  })
}

/** A free TCP port on 127.0.0.1 in 19000-19999. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 19000 + Math.floor(Math.random() * 1000)
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer()
      probe.once('error', () => resolve(false))
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
    })
    if (free) return port
  }
  throw new Error('no free port in 19000-19999')
}

export interface PrometheusServer {
  /** http://127.0.0.1:<port> */
  readonly url: string
  /** The value of an instant query whose result is one sample (a `sum(…)`); undefined when it has none. */
  query(expression: string): Promise<number | undefined>
  /** Stop it (SIGTERM, then SIGKILL) by its pid, and remove its data; safe to call twice. */
  stop(): Promise<void>
}

/** Servers this process started, killed at exit so that a failed run leaves none behind. */
const started = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL')
})

/** Start Prometheus scraping `target` (`host:port`, path /metrics) every second; resolves once `/-/ready` answers. */
export async function startPrometheus(target: string): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-prometheus-'))
  const config = join(dir, 'prometheus.yml')
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: idem',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  )
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  started.add(child)
  let log = ''
  child.stderr?.on('data', (chunk) => {
    log = (log + chunk).slice(-4000)
  })
  let exited: string | undefined
  child.once('error', (error) => {
    exited = error.message
  })
  child.once('exit', (code, signal) => {
    started.delete(child)
    exited ??= `exited (${signal ?? code})`
  })

  const stop = async (): Promise<void> => {
    if (exited === undefined && child.pid !== undefined) {
      const gone = new Promise((resolve) => child.once('exit', resolve))
      process.kill(child.pid, 'SIGTERM')
      const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 10_000)
      await gone
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + 30_000
  for (;;) {
    if (exited !== undefined) {
      await stop()
      throw new Error(`prometheus ${exited}:\n${log}`)
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`prometheus did not become ready on ${url} within 30 s:\n${log}`)
    }
    await sleep(100)
  }

  return {
    url,
    async query(expression) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expression)}`)
      const body = (await response.json()) as {
        status: string
        error?: string
        data?: { resultType: string; result: { value: [number, string] }[] }
      }
      if (body.status !== 'success') throw new Error(`query ${expression} failed: ${body.error}`)
      const result = body.data?.result ?? []
      if (result.length === 0) return undefined
      if (result.length > 1) throw new Error(`query ${expression} gave ${result.length} series; sum() it`)
      return Number(result[0]?.value[1])
    },
    stop,
  }
}

/** A registry served on `/metrics` at a free loopback port, counting the scrapes it answered. */
export interface MetricsExporter {
  /** `127.0.0.1:<port>`: what a Prometheus scrape config names. */
  readonly target: string
  /** Scrapes of /metrics served so far (each counted when it starts). */
  scrapes(): number
  /** Resolves once `count` scrapes started after now (all but the last of them complete), or fails after `timeoutMs`. */
  scrapesAfterNow(count: number, timeoutMs?: number): Promise<void>
  close(): void
}

export async function serveMetrics(registry: {
  metrics(): Promise<string>
  readonly contentType: string
}): Promise<MetricsExporter> {
  let scrapes = 0
  const server = createHttpServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    scrapes++
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500).end(String(error)),
    )
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    target: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    scrapes: () => scrapes,
    async scrapesAfterNow(count, timeoutMs = 30_000) {
      const seen = scrapes
      const deadline = Date.now() + timeoutMs
      while (scrapes < seen + count) {
        if (Date.now() > deadline) {
          throw new Error(`Prometheus scraped ${scrapes - seen} times in ${timeoutMs / 1000} s, not ${count}`)
        }
        await sleep(50)
      }
    },
    close: () => {
      server.close()
    },
  }
}
