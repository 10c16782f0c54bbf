// The one line a server started as a child process prints once it listens (`{"url": …}`, the
// upstream, the benchmark's gateways): its url, or a clear error when the child exits or stays
// silent first (then it is killed).

import type { ChildProcess } from 'node:child_process'

/** `what` names the child in errors; `stderr` gives what it said, for the error. */
export function urlLineOf(
  child: ChildProcess,
  what: string,
  timeoutMs: number,
  stderr: () => string = () => '',
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let stdout = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${what} did not print its url within ${timeoutMs} ms\n${stderr()}`))
    }, timeoutMs)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${signal ?? code}) before listening\n${stderr()}`))
    })
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const line = stdout
        .split('\n')
        .slice(0, -1)
        .find((l) => l.startsWith('{'))
      if (line === undefined) return
      clearTimeout(timer)
      resolve((JSON.parse(line) as { url: string }).url)
    })
  })
}
