// Durations as milliseconds or short strings ('500ms', '30s', '5m', '24h', '7d'), and the one check for counts and sizes.

export type Duration = number | string

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/

/** Parse a duration to whole positive milliseconds; anything else is a RangeError naming `what`. */
export function toMs(duration: Duration, what = 'duration'): number {
  let ms: number
  if (typeof duration === 'number') {
    ms = duration
  } else if (typeof duration === 'string') {
    const match = PATTERN.exec(duration)
    if (match === null) {
      throw new RangeError(
        `Invalid ${what} "${duration}": use milliseconds or a string like "500ms", "30s", "5m", "24h", "7d"`,
      )
    }
    ms = Number(match[1]) * (UNIT_MS[match[2] as string] as number)
  } else {
    throw new RangeError(`Invalid ${what}: expected milliseconds or a string like "30s", got ${typeof duration}`)
  }
  if (!Number.isFinite(ms) || ms < 1 || ms > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`Invalid ${what} ${JSON.stringify(duration)}: must be at least 1 ms`)
  }
  return Math.round(ms)
}

/**
 * `value` checked as a positive integer (a count, a size, a limit); anything else is a RangeError
 * naming the option. The one check and the one wording every option of Idem uses.
 */
export function positiveInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${describeValue(value)}`)
  }
  return value
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  return String(value)
}
