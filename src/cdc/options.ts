// consumeBinlog's options checked once, before anything connects, with their defaults resolved.

import { DEFAULT_CHECKPOINT_TABLE } from './checkpoint.js'
import type { ConsumeBinlogOptions } from './types.js'

export interface Settings {
  name: string
  scope: string
  table: string
  maxAttempts: number
  retryDelayMs: number
  maxPending: number
  idleCheckpointMs: number
}

export function check<Tx>(options: ConsumeBinlogOptions<Tx>): Settings {
  if (options === null || typeof options !== 'object') throw new TypeError('consumeBinlog needs an options object')
  if (options.source === null || typeof options.source !== 'object') {
    throw new TypeError('consumeBinlog needs `source`: the connection settings of the MariaDB/MySQL server to read')
  }
  if (typeof options.apply !== 'function') throw new TypeError('consumeBinlog needs `apply(change, tx, context)`')
  if (typeof options.idempotency?.transaction !== 'function') {
    throw new TypeError('consumeBinlog needs `idempotency`: an Idempotency on a SQL store of the target database')
  }
  if (!Number.isInteger(options.serverId) || options.serverId < 1 || options.serverId > 0xffffffff) {
    throw new TypeError(
      'serverId must be an integer from 1 to 4294967295, unique among the source’s replicas and readers',
    )
  }
  const name = options.name ?? 'default'
  if (typeof name !== 'string' || !/^[\x21-\x7e]{1,150}$/.test(name)) {
    throw new TypeError('name must be 1 to 150 printable ASCII characters without spaces')
  }
  const from = options.from
  if (from !== undefined && from !== 'end' && from !== 'start') {
    const valid =
      typeof from === 'object' &&
      from !== null &&
      (typeof from.gtid === 'string' || (typeof from.file === 'string' && Number.isInteger(from.position)))
    if (!valid) throw new TypeError("from must be 'end', 'start', { gtid } or { file, position }")
  }
  const positive = (value: number | undefined, fallback: number, what: string) => {
    if (value === undefined) return fallback
    if (!Number.isInteger(value) || value < 1) throw new TypeError(`${what} must be a positive integer`)
    return value
  }
  const idle = options.idleCheckpointMs ?? 10_000
  if (!Number.isInteger(idle) || idle < 0) throw new TypeError('idleCheckpointMs must be an integer ≥ 0')
  return {
    name,
    scope: `cdc:${name}`,
    table: options.checkpointTable ?? DEFAULT_CHECKPOINT_TABLE,
    maxAttempts: positive(options.maxAttempts, 5, 'maxAttempts'),
    retryDelayMs: positive(options.retryDelayMs, 1000, 'retryDelayMs'),
    maxPending: positive(options.maxPending, 100, 'maxPending'),
    idleCheckpointMs: idle,
  }
}
