// What the per-broker consumer benchmarks share: the row they report, Redis cleanup, the median
// of rounds, and the table a module prints when it runs on its own.

import type { Redis } from 'ioredis'

export interface Row {
  adapter: string
  variant: 'raw' | 'idem-redis' | 'idem-redis-batch' | 'idem-sqlite'
  messagesPerSecond: number
}

/** Delete every key matching `pattern` (SCAN, in slices), the keys a run's stores wrote. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500))
  } while (cursor !== '0')
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

/** One line per variant with its share of the raw consumer, for a module run on its own. */
export function printRows(rows: readonly Row[]): void {
  const raw = rows.find((r) => r.variant === 'raw')?.messagesPerSecond ?? 1
  for (const row of rows) {
    const ratio = `${((row.messagesPerSecond / raw) * 100).toFixed(0)}%`
    console.log(`${row.variant.padEnd(18)} ${Math.round(row.messagesPerSecond).toString().padStart(8)} msg/s  ${ratio}`)
  }
}
