// What `watch()` accepts (in idem/metrics, idem/logging and idem/anomalies alike), told apart once:
// an Idempotency, the HTTP core, a consumer (its core or an adapter's handle), an outbox relay, an
// anomaly detector.

import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { ConsumerHandle } from '../../consumer/handle.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { OutboxRelay } from '../../outbox/relay.js'
import { type AnomalySource, isAnomalySource } from './anomaly.js'

// biome-ignore lint/suspicious/noExplicitAny: a consumer of any payload and transaction type
type AnyConsumer = IdempotentConsumer<any, any>
// biome-ignore lint/suspicious/noExplicitAny: a handle of any payload, transaction and stats type
type AnyHandle = ConsumerHandle<any, any, any>

/** Anything `watch()` takes. */
export type Watchable = Idempotency | HttpIdempotency | AnyConsumer | AnyHandle | OutboxRelay | AnomalySource

export type Target =
  | { kind: 'idempotency'; idem: Idempotency }
  | { kind: 'http'; http: HttpIdempotency }
  /** `handle` when an adapter's handle was given (it may know the broker's lag). */
  | { kind: 'consumer'; consumer: AnyConsumer; handle: AnyHandle | undefined }
  | { kind: 'relay'; relay: OutboxRelay }
  | { kind: 'anomalies'; source: AnomalySource }

/** What `value` is, or a TypeError that says what `caller` accepts. */
export function targetOf(value: unknown, caller: string): Target {
  if (value instanceof Idempotency) return { kind: 'idempotency', idem: value }
  if (value instanceof HttpIdempotency) return { kind: 'http', http: value }
  if (value instanceof IdempotentConsumer) return { kind: 'consumer', consumer: value, handle: undefined }
  if (value instanceof OutboxRelay) return { kind: 'relay', relay: value }
  if (isAnomalySource(value)) return { kind: 'anomalies', source: value }
  const consumer = (value as { consumer?: unknown } | null)?.consumer
  if (consumer instanceof IdempotentConsumer) return { kind: 'consumer', consumer, handle: value as AnyHandle }
  throw new TypeError(
    `${caller} takes an Idempotency, an HttpIdempotency, a consumer (IdempotentConsumer or the handle of consumeAmqp, consumeKafka, …) an OutboxRelay or an AnomalyDetector`,
  )
}
