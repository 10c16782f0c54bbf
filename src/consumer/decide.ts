// What to tell the broker when a delivery's run ended in an error: the whole retry / dead-letter
// policy of docs/architecture.md ("Consumers") in one place, so that single deliveries and batches settle alike.

import {
  ErrorCode,
  FingerprintMismatchError,
  IdempotencyError,
  InProgressError,
  InvalidKeyError,
  LeaseLostError,
  StoreUnavailableError,
} from '../errors.js'
import { DeliveryWithdrawnError } from './stale-delivery.js'
import { DeliveryOutcome } from './types.js'

/** What the broker is asked to do, and what is reported. */
export type Decision =
  | { action: 'ack'; outcome: 'executed' | 'replayed'; reason?: string }
  | { action: 'retry'; outcome: 'retried'; delayMs: number; reason: string; error?: unknown }
  | { action: 'deadLetter'; outcome: 'dead_lettered'; reason: string; error?: unknown }

export interface Facts {
  /** The handler was called. */
  started: boolean
  /** The handler returned (its work is done), whatever happened to its outcome afterwards. */
  returned: boolean
  deliveryCount: number
  maxAttempts: number
  backoff(attempt: number): number
  isFinal(error: unknown): boolean
}

export const EXECUTED: Decision = { action: 'ack', outcome: DeliveryOutcome.EXECUTED }
export const REPLAYED: Decision = { action: 'ack', outcome: DeliveryOutcome.REPLAYED }
export const SHUTDOWN: Decision = {
  action: 'retry',
  outcome: DeliveryOutcome.RETRIED,
  delayMs: 0,
  reason: 'shutdown: the consumer is closing',
}

export function decide(error: unknown, facts: Facts): Decision {
  const reason = reasonOf(error)
  // A key or payload the store can never accept: retrying cannot help.
  if (error instanceof InvalidKeyError || error instanceof FingerprintMismatchError) return deadLetter(reason, error)
  // Another worker holds the key: come back when its lease would have lapsed. Not a failure of
  // this message, so it never counts towards maxAttempts.
  if (error instanceof InProgressError) return retry(error.retryAfterMs, reason, error)
  // The broker took the message back before the handler ran: it comes again, nothing was attempted.
  if (error instanceof DeliveryWithdrawnError) return retry(0, reason, error)
  if ((error as { replayed?: unknown } | null)?.replayed === true) {
    // A duplicate of work that ran but whose result could not be stored: the work is done.
    if (isUnstorableResult(error)) return { ...REPLAYED, reason }
    // A duplicate of a message whose `isFinal` error was stored: dead-letter it too, so that a
    // redelivery after a failed deadLetter call still reaches the dead-letter destination.
    return deadLetter(reason, error)
  }
  if (facts.returned) {
    // The handler's work is done; another worker took over the key after our lease lapsed and
    // owns its outcome now. Running it again buys nothing: acknowledge.
    if (error instanceof LeaseLostError) return { ...EXECUTED, reason }
    // The work is done and the record holds an error saying its result was not storable.
    if (isUnstorableResult(error)) return { ...EXECUTED, reason }
  }
  // The store is down: not the message's fault, so never dead-letter; retry until it is back.
  if (error instanceof StoreUnavailableError) return retry(facts.backoff(facts.deliveryCount), reason, error)
  if (!facts.started) {
    // Bad arguments (a payload that cannot be fingerprinted, say) fail the same way every time.
    if (error instanceof TypeError || error instanceof RangeError || error instanceof IdempotencyError) {
      return deadLetter(reason, error)
    }
    // Transaction mode: the database failed before the handler ran; treat it like a store outage.
    return retry(facts.backoff(facts.deliveryCount), reason, error)
  }
  if (facts.isFinal(error)) return deadLetter(reason, error)
  if (facts.deliveryCount >= facts.maxAttempts) return deadLetter(reason, error)
  return retry(facts.backoff(facts.deliveryCount), reason, error)
}

function retry(delayMs: number, reason: string, error: unknown): Decision {
  const delay = Number.isFinite(delayMs) ? Math.max(0, Math.ceil(delayMs)) : 0
  return { action: 'retry', outcome: DeliveryOutcome.RETRIED, delayMs: delay, reason, error }
}

function deadLetter(reason: string, error: unknown): Decision {
  return { action: 'deadLetter', outcome: DeliveryOutcome.DEAD_LETTERED, reason, error }
}

function isUnstorableResult(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return (
    error instanceof IdempotencyError &&
    (code === ErrorCode.RESULT_TOO_LARGE || code === ErrorCode.RESULT_NOT_SERIALIZABLE)
  )
}

const MAX_REASON_LENGTH = 1000

/** The error's name and message (and Idem's code), short enough for a header. */
export function reasonOf(error: unknown): string {
  let text: string
  if (error instanceof Error) {
    const code = error instanceof IdempotencyError ? ` (${error.code})` : ''
    text = `${error.name}: ${error.message}${code}`
  } else {
    text = `Error: ${String(error)}`
  }
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH - 1)}…` : text
}

/** 1 s doubling to 60 s, each delay drawn between half and all of it, so that retries spread out. */
export function defaultBackoff(attempt: number): number {
  const n = Number.isFinite(attempt) && attempt >= 1 ? Math.min(Math.floor(attempt), 20) : 1
  const ceiling = Math.min(60_000, 1000 * 2 ** (n - 1))
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
}
