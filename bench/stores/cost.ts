// Where an operation's time goes, for Redis workloads: this process's CPU per operation
// (process.cpuUsage: JavaScript, the driver, syscalls, GC) and Redis' own execution time per
// operation (INFO commandstats, diffed around the measurement: command execution only, without
// reading, parsing and answering on the socket). Other clients of a shared Redis add their
// commands to the diff: the call count per operation shows whether that happened.

import type { Redis } from 'ioredis'
import { measure, type Workload } from '../lib/measure.js'
import { formatTable, opsFmt } from '../lib/report.js'

const SCRIPTS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'])

interface Stat {
  calls: number
  usec: number
}

async function commandStats(redis: Redis): Promise<Map<string, Stat>> {
  const stats = new Map<string, Stat>()
  for (const m of (await redis.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    stats.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) })
  }
  return stats
}

export interface CostRow {
  label: string
  workload: Workload
  /** The Redis that serves it, for the commandstats diff. */
  redis: Redis
}

export async function costTable(
  title: string,
  rows: readonly CostRow[],
  options: { seconds: number; concurrency: number; sampleScale: number },
): Promise<void> {
  const lines: string[][] = []
  for (const row of rows) {
    let ops = 0
    const { op } = row.workload
    const counted: Workload = {
      ...row.workload,
      op: () => {
        ops++
        return op()
      },
    }
    const before = await commandStats(row.redis)
    const cpu = process.cpuUsage()
    const opsPerSecond = await measure(counted, options)
    const used = process.cpuUsage(cpu)
    const after = await commandStats(row.redis)
    const diff = new Map<string, Stat>()
    for (const [name, stat] of after) {
      if (name === 'info' || name.startsWith('config')) continue
      const was = before.get(name) ?? { calls: 0, usec: 0 }
      if (stat.calls > was.calls) diff.set(name, { calls: stat.calls - was.calls, usec: stat.usec - was.usec })
    }
    // A script's time includes the commands it calls, which are also counted on their own: when
    // scripts ran, count only the scripts (these workloads send nothing else) and name the rest.
    const scripted = [...diff.keys()].filter((name) => SCRIPTS.has(name))
    const summed = scripted.length > 0 ? scripted : [...diff.keys()]
    let calls = 0
    let usec = 0
    for (const name of summed) {
      calls += (diff.get(name) as Stat).calls
      usec += (diff.get(name) as Stat).usec
    }
    const inside = [...diff.keys()].filter((name) => !summed.includes(name))
    const names = [...summed.sort(), ...(inside.length > 0 ? [`(inside: ${inside.sort().join(' ')})`] : [])]
    lines.push([
      row.label,
      opsFmt.format(opsPerSecond),
      ((used.user + used.system) / ops).toFixed(1),
      (usec / ops).toFixed(2),
      (calls / ops).toFixed(2),
      names.join(' '),
    ])
  }
  console.log(`\n${title}`)
  console.log(
    formatTable(['case', 'ops/s', 'client CPU us/op', 'redis us/op', 'redis calls/op', 'redis commands'], lines),
  )
}
