// The entries idem/logging writes, built from the events they report: a stable `event` name, the
// level, the fields and a message. Run events carry the scope's label (never a principal) and
// digests of the record id and the key; consumer events the consumer's name and the key's
// digest. Never a payload, a result, a key or an error object (see redact.ts).

import type { DeliveryResult } from '../../consumer/types.js'
import type { IdempotencyEventBase, IdempotencyEvents } from '../../core/events.js'
import type { Anomaly } from '../core/anomaly.js'
import { scopeLabel } from '../core/labels.js'
import type { LogLevel } from './logger.js'
import { type ErrorSummary, logDigest, redact, summarize } from './redact.js'

/** The `event` of every entry idem/logging writes. */
export type LogEventName =
  | 'idem.takeover'
  | 'idem.lease_lost'
  | 'idem.store_error'
  | 'idem.fail_open'
  | 'idem.released'
  | 'idem.mismatch'
  | 'idem.consumer.dead_lettered'
  | 'idem.consumer.broker_error'
  | 'idem.anomaly'

/** The object of an entry (pino's merging object). */
export interface LogEntry {
  event: LogEventName
  /** The scope's label: the scope, or for HTTP `prefix|METHOD route`. */
  scope?: string
  /** `logDigest` of the record id. */
  recordDigest?: string
  /** `logDigest` of the key (a consumer's: of the message's key). */
  keyDigest?: string
  /** The record id itself: only with `revealKeys`. */
  recordId?: string
  /** The key itself: only with `revealKeys`. */
  key?: string
  /** The `name` given to `watch` (a consumer's is in `consumer`). */
  name?: string
  /** The consumer's `name` (default `consumer`). */
  consumer?: string
  error?: ErrorSummary
  [field: string]: unknown
}

export interface Written {
  level: LogLevel
  entry: LogEntry
  message: string
}

/** What a watch adds to its entries. */
export interface Context {
  name: string | undefined
  revealKeys: boolean
}

function runEntry(event: LogEventName, e: IdempotencyEventBase, ctx: Context): LogEntry {
  const entry: LogEntry = {
    event,
    scope: scopeLabel(e.scope),
    recordDigest: logDigest(e.id),
    keyDigest: logDigest(e.key),
  }
  if (ctx.revealKeys) {
    entry.recordId = e.id
    entry.key = e.key
  }
  if (ctx.name !== undefined) entry.name = ctx.name
  return entry
}

export const runEntries = {
  takeover: (e: IdempotencyEvents['takeover'], ctx: Context): Written => ({
    level: 'warn',
    entry: { ...runEntry('idem.takeover', e, ctx), attempt: e.attempt },
    message: `idem: took over a lapsed lease, left by a crashed or stalled worker (attempt ${e.attempt})`,
  }),
  lease_lost: (e: IdempotencyEvents['lease_lost'], ctx: Context): Written => ({
    level: 'error',
    entry: { ...runEntry('idem.lease_lost', e, ctx), during: e.during },
    message: `idem: lost the claim while the function ran (${e.during}): another worker took the key over`,
  }),
  store_error: (e: IdempotencyEvents['store_error'], ctx: Context): Written => {
    const failOpen = e.failOpen === true
    const entry: LogEntry = {
      ...runEntry(failOpen ? 'idem.fail_open' : 'idem.store_error', e, ctx),
      operation: e.operation,
      failOpen,
      error: summarize(e.error, e),
    }
    return failOpen
      ? {
          level: 'warn',
          entry,
          message: `idem: the store failed during ${e.operation}; failOpen let the call go on without it (unprotected)`,
        }
      : { level: 'error', entry, message: `idem: the store failed during ${e.operation}` }
  },
  // A retryable failure released the key: the intended path to a retry, and the caller gets the
  // error (a consumer retries, and at maxAttempts dead-letters at `error`). A line per failed
  // attempt at `info` would flood the logs whenever a dependency flaps: `debug`.
  released: (e: IdempotencyEvents['released'], ctx: Context): Written => ({
    level: 'debug',
    entry: { ...runEntry('idem.released', e, ctx), error: summarize(e.error, e) },
    message: 'idem: a retryable failure released the key for a retry',
  }),
  mismatch: (e: IdempotencyEvents['mismatch'], ctx: Context): Written => ({
    level: 'warn',
    entry: runEntry('idem.mismatch', e, ctx),
    message: 'idem: a key was reused with a different payload',
  }),
}

function consumerEntry(event: LogEventName, key: string, consumer: string, ctx: Context): LogEntry {
  const entry: LogEntry = { event, consumer, keyDigest: logDigest(key) }
  if (ctx.revealKeys) entry.key = key
  return entry
}

export function deadLettered(e: DeliveryResult & { durationMs: number }, consumer: string, ctx: Context): Written {
  const entry: LogEntry = {
    ...consumerEntry('idem.consumer.dead_lettered', e.key, consumer, ctx),
    reason: redact(e.reason ?? '', e),
    durationMs: Math.round(e.durationMs),
  }
  if (e.error !== undefined) entry.error = summarize(e.error, e)
  return { level: 'error', entry, message: `idem: consumer ${consumer} dead-lettered a message` }
}

export function brokerError(
  e: { key: string; operation: string; error: unknown },
  consumer: string,
  ctx: Context,
): Written {
  return {
    level: 'error',
    entry: {
      ...consumerEntry('idem.consumer.broker_error', e.key, consumer, ctx),
      operation: e.operation,
      error: summarize(e.error, e),
    },
    message: `idem: consumer ${consumer}: the broker refused ${e.operation}; the message will come back`,
  }
}

export function anomalyEntry(a: Anomaly, ctx: Context): Written {
  const entry: LogEntry = { event: 'idem.anomaly', scope: a.scope, kind: a.kind, subject: a.subject }
  // The principal's hash (never the principal): who to look at when one caller left its baseline.
  if (a.principal !== undefined) entry.principal = a.principal
  entry.rate = a.rate
  entry.baseline = a.baseline
  if (ctx.name !== undefined) entry.name = ctx.name
  const what = a.kind === 'replays' ? 'replays' : 'payload mismatches'
  const who = a.subject === 'principal' ? ` from one caller of ${a.scope}` : ` on ${a.scope}`
  return {
    level: 'warn',
    entry,
    message: `idem: a burst of ${what}${who}: ${round(a.rate)}/s against ${round(a.baseline)}/s normally`,
  }
}

const round = (n: number) => Math.round(n * 100) / 100
