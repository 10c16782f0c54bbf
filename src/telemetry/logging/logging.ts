// idemLogging: structured log entries for what operators act on (takeovers, lost claims, store
// failures, fail-open executions, mismatches, dead letters, broker refusals, anomalies), written
// to pino, console or any logger with pino's call shape. What an entry may hold is in entries.ts.

import type { IdempotentConsumer } from '../../consumer/consumer.js'
import type { Idempotency } from '../../core/idempotency.js'
import type { AnomalySource } from '../core/anomaly.js'
import { targetOf, type Watchable } from '../core/targets.js'
import { anomalyEntry, brokerError, type Context, deadLettered, runEntries, type Written } from './entries.js'
import { type Logger, type LogLevel, LogWriter } from './logger.js'

export interface IdemLoggingOptions {
  /** pino, `console`, or any object with `info`, `warn`, `error` (and optionally `debug`) taking `(object, message)`. */
  logger: Logger
  /** Entries below this level are not written. Default `info`: `idem.released`, at `debug`, is left out. */
  level?: LogLevel
  /**
   * Also write the raw `key` and `recordId` beside their digests. Default false: a key may be
   * chosen by a client (HTTP) or carry business data, and a record id contains it.
   */
  revealKeys?: boolean
}

export interface WatchOptions {
  /**
   * Written as `name` on a run's and a detector's entries, and as `consumer` on a consumer's
   * (default `consumer`). A target watched again keeps the name of its first watch.
   */
  name?: string
}

export interface IdemLogging {
  /**
   * Log the events of an `Idempotency`, an `HttpIdempotency` (its `idem`'s), a consumer (its core
   * or an adapter's handle) or an anomaly detector. Each is watched once however often it is given
   * (an HttpIdempotency and its idem alike); returns a function that stops this watch.
   */
  watch(target: Watchable, options?: WatchOptions): () => void
  /** Stop every watch. */
  close(): void
}

interface Watching {
  refs: number
  stop: () => void
}

/**
 * Structured logs of what needs an operator's eye, never a payload, a result or a key.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * import { idemLogging } from 'idem/logging'
 *
 * const logging = idemLogging({ logger: pino() })
 * logging.watch(idem)
 * logging.watch(ordersConsumer, { name: 'orders' })
 * // {"level":40,"event":"idem.takeover","scope":"payments","recordDigest":"…","attempt":2,"msg":"idem: took over a lapsed lease…"}
 * ```
 */
export function idemLogging(options: IdemLoggingOptions): IdemLogging {
  if (options === null || typeof options !== 'object') throw new TypeError('idemLogging takes { logger }')
  const writer = new LogWriter(options.logger, options.level ?? 'info')
  const revealKeys = options.revealKeys === true
  const watching = new Map<object, Watching>()
  let closed = false

  const write = (written: Written) => writer.write(written.level, written.entry, written.message)

  function listenRun(idem: Idempotency, ctx: Context): () => void {
    const offs = [
      idem.on('takeover', (e) => write(runEntries.takeover(e, ctx))),
      idem.on('lease_lost', (e) => write(runEntries.lease_lost(e, ctx))),
      idem.on('store_error', (e) => write(runEntries.store_error(e, ctx))),
      idem.on('mismatch', (e) => write(runEntries.mismatch(e, ctx))),
    ]
    if (writer.enabled('debug')) offs.push(idem.on('released', (e) => write(runEntries.released(e, ctx))))
    return () => {
      for (const off of offs) off()
    }
  }

  // biome-ignore lint/suspicious/noExplicitAny: a consumer of any payload and transaction type
  function listenConsumer(consumer: IdempotentConsumer<any, any>, name: string, ctx: Context): () => void {
    const offs = [
      consumer.on('settled', (e) => {
        if (e.outcome === 'dead_lettered') write(deadLettered(e, name, ctx))
      }),
      consumer.on('broker_error', (e) => write(brokerError(e, name, ctx))),
    ]
    return () => {
      for (const off of offs) off()
    }
  }

  function listenAnomalies(source: AnomalySource, ctx: Context): () => void {
    return source.on('anomaly', (a) => write(anomalyEntry(a, ctx)))
  }

  return {
    watch(target: Watchable, watchOptions: WatchOptions = {}): () => void {
      if (closed) throw new Error('This idemLogging is closed')
      const name = watchOptions.name
      if (name !== undefined && typeof name !== 'string') throw new TypeError('name must be a string')
      const ctx: Context = { name, revealKeys }
      const found = targetOf(target, 'idemLogging.watch')
      let key: object
      let listen: () => () => void
      switch (found.kind) {
        case 'idempotency':
          key = found.idem
          listen = () => listenRun(found.idem, ctx)
          break
        case 'http':
          // The HTTP core's own events (one per response) add nothing an operator acts on that
          // the runs of its idem do not say.
          key = found.http.idem
          listen = () => listenRun(found.http.idem, ctx)
          break
        case 'consumer':
          key = found.consumer
          listen = () => listenConsumer(found.consumer, name ?? 'consumer', ctx)
          break
        case 'anomalies':
          key = found.source
          listen = () => listenAnomalies(found.source, ctx)
          break
        case 'relay':
          throw new TypeError('idemLogging cannot watch an OutboxRelay: it has no events; log from its onError option')
      }
      let current = watching.get(key)
      if (current === undefined) {
        current = { refs: 0, stop: listen() }
        watching.set(key, current)
      }
      current.refs++
      let stopped = false
      return () => {
        if (stopped) return
        stopped = true
        const entry = watching.get(key)
        if (entry === undefined || --entry.refs > 0) return
        entry.stop()
        watching.delete(key)
      }
    },
    close(): void {
      closed = true
      for (const entry of watching.values()) entry.stop()
      watching.clear()
    },
  }
}
