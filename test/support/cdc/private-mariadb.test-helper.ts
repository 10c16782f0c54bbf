// A MariaDB of the test's own, with a row-based binlog and GTIDs, on a spare loopback port
// (3310–3319) and a temporary data directory, for the binlog CDC tests. The shared MariaDB on 3306
// is never touched. Stopped by pid (SIGKILL: its data is thrown away with the directory).

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { reachable } from '../../reachable.js'
import { reportMissing } from '../../services.js'

const PORTS = [3310, 3311, 3312, 3313, 3314, 3315, 3316, 3317, 3318, 3319]
const run = promisify(execFile)

export interface PrivateMariadb {
  readonly port: number
  readonly pid: number
  readonly serverId: number
  readonly dataDir: string
  /** mysql://root@127.0.0.1:<port>/ */
  readonly url: string
  /** Kill the server by its pid, wait for it to exit, remove its files. */
  dispose(): Promise<void>
}

export interface PrivateMariadbOptions {
  serverId?: number
  /** More mariadbd arguments (they win over the defaults). */
  args?: readonly string[]
}

function mariadbd(): string | undefined {
  for (const candidate of ['/usr/sbin/mariadbd', '/usr/local/sbin/mariadbd', '/usr/bin/mariadbd']) {
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

/**
 * True when mariadbd and mariadb-install-db can be run. Otherwise, in place of the suite, a skip
 * with a warning, or a failing test under IDEM_REQUIRE_SERVICES=1.
 */
export async function requireMariadbBinaries(suite: string): Promise<boolean> {
  try {
    const server = mariadbd()
    if (server === undefined) throw new Error('mariadbd is not in /usr/sbin, /usr/local/sbin or /usr/bin')
    await run(server, ['--version'], { timeout: 10_000 })
    await run('sh', ['-c', 'command -v mariadb-install-db'], { timeout: 10_000 })
    return true
  } catch (error) {
    reportMissing(
      suite,
      `${suite} needs mariadbd and mariadb-install-db: ${(error as Error).message}`,
      'can start its own MariaDB',
    )
    return false
  }
}

export async function startPrivateMariadb(options: PrivateMariadbOptions = {}): Promise<PrivateMariadb> {
  const server = mariadbd()
  if (server === undefined) throw new Error('mariadbd not found')
  const serverId = options.serverId ?? 3310 + Math.floor(Math.random() * 1000)
  const dir = mkdtempSync(join(tmpdir(), 'idem-cdc-mariadb-'))
  const dataDir = join(dir, 'data')
  await run(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db'],
    { timeout: 60_000 },
  )
  const asRoot = userInfo().uid === 0
  const launch = async (port: number): Promise<ChildProcess | undefined> => {
    const child = spawn(
      server,
      [
        '--no-defaults',
        ...(asRoot ? ['--user=root'] : []),
        `--datadir=${dataDir}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${join(dir, 'mariadb.sock')}`,
        `--pid-file=${join(dir, 'mariadb.pid')}`,
        `--log-error=${join(dir, 'error.log')}`,
        `--log-bin=${join(dataDir, 'binlog')}`,
        '--binlog-format=ROW',
        `--server-id=${serverId}`,
        '--gtid-strict-mode=1',
        '--skip-name-resolve',
        '--innodb-buffer-pool-size=32M',
        // The source's own durability is not under test, and the machine is shared.
        '--innodb-flush-log-at-trx-commit=2',
        '--sync-binlog=0',
        ...(options.args ?? []),
      ],
      { stdio: 'ignore' },
    )
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) return undefined
      // Reachable is not enough: another test file may have won the same port a moment ago.
      if ((await reachable(port, '127.0.0.1', 200)) && ownsPort(dir, child.pid)) return child
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    child.kill('SIGKILL')
    return undefined
  }
  for (const port of PORTS) {
    if (await reachable(port, '127.0.0.1', 200)) continue
    const child = await launch(port)
    if (child?.pid === undefined) continue
    const pid = child.pid
    return {
      port,
      pid,
      serverId,
      dataDir,
      url: `mysql://root@127.0.0.1:${port}/`,
      dispose: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve))
          process.kill(pid, 'SIGKILL')
          await exited
        }
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000) : ''
  rmSync(dir, { recursive: true, force: true })
  throw new Error(`could not start a private MariaDB on any of ports ${PORTS.join(', ')}\n${log}`)
}

/** Our server is the one listening: it wrote its pid file, and it says it is up in its log. */
function ownsPort(dir: string, pid: number | undefined): boolean {
  try {
    if (Number(readFileSync(join(dir, 'mariadb.pid'), 'utf8').trim()) !== pid) return false
    return readFileSync(join(dir, 'error.log'), 'utf8').includes('ready for connections')
  } catch {
    return false
  }
}
