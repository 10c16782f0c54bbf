// The logger idem/logging writes to: anything with pino's call shape, `logger.warn(object,
// message)` (pino, console, bunyan-likes), at four levels; `debug` is optional. A throwing logger
// is ignored: logging never changes an outcome.

/** The levels of idem/logging's entries, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** A structured logger: pino, `console`, or any object with `info`, `warn` and `error` taking `(object, message)`. */
export interface Logger {
  debug?(entry: object, message: string): void
  info(entry: object, message: string): void
  warn(entry: object, message: string): void
  error(entry: object, message: string): void
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 }

/** Writes entries at or above a level to a logger, never throwing. */
export class LogWriter {
  readonly #logger: Logger
  readonly #min: number

  constructor(logger: Logger, level: LogLevel = 'info') {
    if (logger === null || (typeof logger !== 'object' && typeof logger !== 'function')) {
      throw new TypeError('idemLogging needs a logger: pino, console, or an object with info, warn and error')
    }
    for (const method of ['info', 'warn', 'error'] as const) {
      if (typeof logger[method] !== 'function') {
        throw new TypeError(`idemLogging needs a logger with an ${method}(object, message) method`)
      }
    }
    const min = RANK[level]
    if (min === undefined) throw new RangeError(`level must be one of debug, info, warn, error, got ${String(level)}`)
    this.#logger = logger
    this.#min = min
  }

  /** True when entries of `level` are written (and worth building). */
  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.#min && (level !== 'debug' || typeof this.#logger.debug === 'function')
  }

  write(level: LogLevel, entry: object, message: string): void {
    if (!this.enabled(level)) return
    try {
      // Called as a method: pino's methods need their `this`.
      this.#logger[level]?.(entry, message)
    } catch {
      // a failing logger never breaks what it reports on
    }
  }
}
