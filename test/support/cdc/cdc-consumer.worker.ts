// A consumer process for the crash test: consumeBinlog from the private MariaDB into the shared
// one with the rig's mirror, until SIGKILLed. Told on stdin "arm", it stops in the middle of the
// next target transaction that holds more than one change (after applying its first change),
// says which on stdout, and waits there to be killed.

import { writeSync } from 'node:fs'
import { consumeBinlog } from '../../../src/cdc/consume-binlog.js'
import type { BinlogPosition } from '../../../src/cdc/types.js'
import { FOLLOWED, mirror, openTarget, type TargetSpec } from './cdc-rig.test-helper.js'

export interface WorkerArgs {
  target: TargetSpec
  port: number
  serverId: number
  name: string
  from: BinlogPosition
}

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs
const say = (line: object) => writeSync(1, `${JSON.stringify(line)}\n`)

let armed = false
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk: string) => {
  if (chunk.includes('arm')) armed = true
})

const target = await openTarget(args.target, false)
const apply = mirror(target.names)
const consumer = await consumeBinlog({
  source: { host: '127.0.0.1', port: args.port, user: 'root' },
  client: target.pool,
  idempotency: target.idempotency,
  serverId: args.serverId,
  name: args.name,
  tables: FOLLOWED,
  checkpointTable: target.names.checkpoints,
  from: args.from,
  maxPending: 8,
  retryDelayMs: 50,
  apply: async (change, tx, context) => {
    if (armed && change.index === 1) {
      say({ stoppedIn: context.transaction.key, size: context.transaction.size })
      await new Promise<never>(() => {})
    }
    await apply(change, tx, context)
  },
})
say({ started: true })
consumer.done.catch((error: unknown) => {
  process.stderr.write(`consumer stopped: ${(error as Error)?.stack ?? String(error)}\n`)
  process.exit(1)
})
