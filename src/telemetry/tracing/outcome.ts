// What became of a call, as its spans say it: the `idem.outcome` attribute, the replay event, and
// an ERROR status only for a failure (the function threw, the store failed, the lease was lost),
// never for an answer such as IN_PROGRESS or FINGERPRINT_MISMATCH.

import { type Span, SpanStatusCode } from '@opentelemetry/api'
import { ErrorCode, IdempotencyError } from '../../errors.js'
import { Attr, REPLAY_EVENT } from './names.js'

/**
 * What functions threw: such an error ends its run with outcome `error`, even an Idem error (a
 * nested call's IN_PROGRESS) or a replayed one (a nested call's stored error), which it would
 * otherwise stand for.
 */
const thrownByFunctions = new WeakSet<object>()

/** `error` left the function. */
export function thrownByFunction(error: unknown): void {
  if (typeof error === 'object' && error !== null) thrownByFunctions.add(error)
}

/** Marks `span` failed with `error`: the exception event and status ERROR. */
export function fail(span: Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error)
  span.recordException(error instanceof Error ? error : message)
  span.setStatus({ code: SpanStatusCode.ERROR, message })
}

/** A run span's call returned `result` (a RunResult or a TransactionOutcome). */
export function settled(span: Span, result: unknown): void {
  const { status, failedOpen } = (result ?? {}) as { status?: unknown; failedOpen?: unknown }
  if (status === 'replayed') replayed(span)
  else span.setAttribute(Attr.OUTCOME, failedOpen === true ? 'failed_open' : 'executed')
}

/** A run span's call threw `error`. */
export function rejected(span: Span, error: unknown): void {
  if (typeof error === 'object' && error !== null && !thrownByFunctions.has(error)) {
    // A stored `isFinal` error given back to a duplicate: a replay, not a failure of this call.
    if ((error as { replayed?: unknown }).replayed === true) {
      replayed(span)
      return
    }
    if (error instanceof IdempotencyError) {
      span.setAttribute(Attr.OUTCOME, error.code)
      // A key in progress elsewhere or reused with another payload is an answer, not a failure.
      if (error.code !== ErrorCode.IN_PROGRESS && error.code !== ErrorCode.FINGERPRINT_MISMATCH) fail(span, error)
      return
    }
  }
  span.setAttribute(Attr.OUTCOME, 'error')
  fail(span, error)
}

function replayed(span: Span): void {
  span.setAttribute(Attr.OUTCOME, 'replayed')
  span.addEvent(REPLAY_EVENT)
}
