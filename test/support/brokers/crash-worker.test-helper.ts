// Runs a broker test's consumer worker (a TypeScript file under test/support/brokers/) in a child
// process, reads the JSON lines it reports on stdout, and with `crash` kills it with SIGKILL as
// soon as it reports being inside a handler: the crash a consumer test is about.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** What a worker reports, one JSON object per line. */
export interface WorkerReport {
  inHandler?: string
  received?: string
  deliveryCount?: number
  settled?: string
  outcome?: string
}

/** Where tsx finds the tsconfig. */
const REPO = fileURLToPath(new URL('../../..', import.meta.url))

/**
 * Run `worker` with `args` (and `--crash` when `crash`). Resolves once it ended as it should
 * (killed by SIGKILL with `crash`, exit code 0 otherwise), rejects with its stderr otherwise; a
 * worker still running after `timeoutMs` is killed.
 */
export function runCrashWorker(
  worker: string,
  args: readonly string[],
  crash: boolean,
  timeoutMs = 30_000,
): Promise<{ reports: WorkerReport[]; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, ...args, ...(crash ? ['--crash'] : [])], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const reports: WorkerReport[] = []
  let stderr = ''
  let buffered = ''
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      const report = JSON.parse(line) as WorkerReport
      reports.push(report)
      if (crash && report.inHandler !== undefined) child.kill('SIGKILL')
    }
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (crash ? signal === 'SIGKILL' : code === 0) resolve({ reports, signal })
      else reject(new Error(`worker ended with ${signal ?? `code ${code}`}: ${stderr.trim()}`))
    })
  })
}
