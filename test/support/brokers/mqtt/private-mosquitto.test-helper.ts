// A Mosquitto of the test's own, on a spare loopback port (7501–7509) with persistence in a
// temporary directory, for tests that stop and restart the broker. The shared one on 1883 is
// never restarted.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { reachable } from '../../../reachable.js'

const PORTS = [7501, 7502, 7503, 7504, 7505, 7506, 7507, 7508, 7509]

export interface PrivateMosquitto {
  readonly port: number
  /** SIGTERM (Mosquitto writes its persistence file on the way out), and wait for the exit. */
  stop(): Promise<void>
  /** Start again on the same port and files. */
  start(): Promise<void>
  /** Stop and remove the files. */
  dispose(): Promise<void>
}

export async function startPrivateMosquitto(): Promise<PrivateMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-mosquitto-'))
  let child: ChildProcess | undefined
  let port = 0
  const launch = async (candidate: number): Promise<boolean> => {
    const config = join(dir, 'mosquitto.conf')
    writeFileSync(
      config,
      [
        `listener ${candidate} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dir}/`,
        `log_dest file ${join(dir, 'mosquitto.log')}`,
        // Started as root, Mosquitto would switch to the mosquitto user, who cannot write here.
        ...(userInfo().uid === 0 ? ['user root'] : []),
      ].join('\n'),
    )
    const started = spawn('mosquitto', ['-c', config], { stdio: 'ignore' })
    const exited = new Promise<false>((resolve) => started.once('exit', () => resolve(false)))
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (started.exitCode !== null) return false
      if (await reachable(candidate, '127.0.0.1', 200)) {
        child = started
        return true
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 50))])
    }
    started.kill('SIGKILL')
    return false
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGTERM')
    await exited
  }
  for (const candidate of PORTS) {
    if (await reachable(candidate, '127.0.0.1', 200)) continue
    if (await launch(candidate)) {
      port = candidate
      break
    }
  }
  if (port === 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`could not start a private mosquitto on any of ports ${PORTS.join(', ')}`)
  }
  return {
    port,
    stop,
    start: async () => {
      if (!(await launch(port))) throw new Error(`could not restart the private mosquitto on port ${port}`)
    },
    dispose: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
