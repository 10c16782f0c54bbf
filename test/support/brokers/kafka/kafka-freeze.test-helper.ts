// Freezing a broker of a test's own (SIGSTOP, then SIGCONT): requests already written to its socket
// stay unanswered until it thaws, then it handles them. That is how a write whose acknowledgement
// never reached the client is made on purpose.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The pid of the process listening on 127.0.0.1:`port` (a PrivateKafka's broker), read with `ss`. */
export async function listenerPid(port: number): Promise<number> {
  const { stdout } = await run('ss', ['-ltnpH', `sport = :${port}`], { timeout: 10_000 })
  const pid = /pid=(\d+)/.exec(stdout)?.[1]
  if (pid === undefined) throw new Error(`no process of ours listens on port ${port} (ss said: ${stdout.trim()})`)
  return Number(pid)
}

/** Run `body` with the process `pid` stopped; it is continued afterwards whatever happens. */
export async function whileFrozen<T>(pid: number, body: () => Promise<T>): Promise<T> {
  process.kill(pid, 'SIGSTOP')
  try {
    return await body()
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}
