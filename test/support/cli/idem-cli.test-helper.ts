// Test infrastructure: the `idem` command two ways — main() in this process with its console
// output captured, and the executable (src/cli/bin.ts) in a child process for real exit codes.

import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { vi } from 'vitest'
import { main } from '../../../src/cli/main.js'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const BIN = join(REPO, 'src', 'cli', 'bin.ts')

/** main(argv) with an empty environment; `out` is every printed line (multi-line prints split). */
export async function runIdem(...argv: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')))
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')))
  try {
    const code = await main(argv, {})
    return { code, out: out.flatMap((text) => text.split('\n')), err: err.join('\n') }
  } finally {
    log.mockRestore()
    error.mockRestore()
  }
}

/** The executable itself, without IDEM_ADMIN_URL/IDEM_ADMIN_TOKEN from this process: its exit code and output. */
export function runIdemBin(...argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...argv], {
      cwd: REPO,
      env: { ...process.env, IDEM_ADMIN_URL: '', IDEM_ADMIN_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
