// The metric families of `idemMetrics()`, their names, help and labels, registered together:
// either all of them or, when the registry already has one of these names, none.

import type { Registry } from 'prom-client'
import { CollectedHistogram, type Labels } from './collected-histogram.js'
import type { HistogramCells } from './histogram-cells.js'
import type { ResolvedOptions } from './options.js'
import { collectedCounter, collectedGauge } from './scrape-metrics.js'
import type { Tallies } from './tallies.js'

/** One family: its name without the prefix, and how to make it once the name is known to be free. */
interface Family {
  name: string
  make: (registry: Registry, name: string) => unknown
}

const counter =
  (help: string, labelNames: readonly string[], samples: Parameters<typeof collectedCounter>[4]) =>
  (registry: Registry, name: string) =>
    collectedCounter(registry, name, help, labelNames, samples)

const gauge =
  (help: string, labelNames: readonly string[], samples: Parameters<typeof collectedGauge>[4]) =>
  (registry: Registry, name: string) =>
    collectedGauge(registry, name, help, labelNames, samples)

const histogram =
  (
    help: string,
    labelNames: readonly string[],
    bounds: Float64Array,
    series: () => Iterable<readonly [Labels, HistogramCells]>,
  ) =>
  (registry: Registry, name: string) => {
    const metric = new CollectedHistogram(name, help, labelNames, bounds, series)
    // prom-client types registerMetric for its own classes; the registry only reads name, type,
    // get() and reset(), which CollectedHistogram has with the same shapes.
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0])
    return metric
  }

function families(t: Tallies, { storeBuckets, functionBuckets }: ResolvedOptions): Family[] {
  const { scopes, store, http, consumers, relays } = t
  return [
    {
      name: 'requests_total',
      make: counter(
        'Idempotent calls by scope and outcome: executed, final_error (an isFinal error stored), replayed, in_progress (refused), mismatch, released (a retryable error freed the key), lease_lost, failed_open (the store failed and failOpen went on: ran unprotected, or its outcome not stored), store_unavailable (store down before the claim: refused)',
        ['scope', 'outcome'],
        () => scopes.requests(),
      ),
    },
    {
      name: 'lease_takeovers_total',
      make: counter('Executions that took over the lapsed lease of a crashed or stalled worker', ['scope'], () =>
        scopes.takeovers(),
      ),
    },
    {
      name: 'store_errors_total',
      make: counter('Store calls that failed, by operation', ['operation'], () => store.errors.samples('operation')),
    },
    {
      name: 'store_duration_seconds',
      make: histogram('Duration of store calls, by operation', ['operation'], storeBuckets, () => store.durations()),
    },
    {
      name: 'function_duration_seconds',
      make: histogram('Duration of the idempotent function, by scope', ['scope'], functionBuckets, () =>
        scopes.durations(),
      ),
    },
    {
      name: 'http_requests_total',
      make: counter(
        'HTTP requests subject to idempotency, by route, method, outcome (executed, replayed, rejected, released, no_key) and status',
        ['route', 'method', 'outcome', 'status'],
        () => http.samples(),
      ),
    },
    {
      name: 'consumer_received_total',
      make: counter('Deliveries received by a consumer', ['consumer'], () => consumers.received()),
    },
    {
      name: 'consumer_settled_total',
      make: counter(
        'Deliveries settled by a consumer, by outcome: executed, replayed, retried, dead_lettered',
        ['consumer', 'outcome'],
        () => consumers.settled(),
      ),
    },
    {
      name: 'consumer_broker_errors_total',
      make: counter(
        'Broker calls (ack, retry, deadLetter, extend) that failed, by consumer and operation',
        ['consumer', 'operation'],
        () => consumers.brokerErrors(),
      ),
    },
    {
      name: 'consumer_duration_seconds',
      make: histogram('Time from receipt to settlement of a delivery', ['consumer'], functionBuckets, () =>
        consumers.durations(),
      ),
    },
    {
      name: 'consumer_in_flight',
      make: gauge('Deliveries accepted by a consumer and not yet settled', ['consumer'], () => consumers.inFlight()),
    },
    {
      name: 'consumer_lag',
      make: gauge(
        'Messages the broker holds for a consumer that it has not yet received, where the broker says',
        ['consumer'],
        () => consumers.lag(),
      ),
    },
    {
      name: 'outbox_published_total',
      make: counter('Outbox messages published and confirmed by the broker', ['relay'], () =>
        relays.counter('published'),
      ),
    },
    {
      name: 'outbox_retried_total',
      make: counter('Outbox publishes that failed and were rescheduled', ['relay'], () => relays.counter('retried')),
    },
    {
      name: 'outbox_failed_total',
      make: counter('Outbox messages marked failed (maxAttempts reached, or undecodable)', ['relay'], () =>
        relays.counter('failed'),
      ),
    },
    {
      name: 'outbox_errors_total',
      make: counter('Database errors of an outbox relay (claims, marks, sweeps)', ['relay'], () =>
        relays.counter('errors'),
      ),
    },
    {
      name: 'outbox_pending',
      make: gauge('Outbox rows not yet confirmed by the broker', ['relay'], () =>
        relays.backlogGauge((backlog) => backlog.pending),
      ),
    },
    {
      name: 'outbox_failed_rows',
      make: gauge('Outbox rows marked failed, waiting for retryFailed', ['relay'], () =>
        relays.backlogGauge((backlog) => backlog.failed),
      ),
    },
    {
      name: 'outbox_oldest_pending_seconds',
      make: gauge('Age of the oldest pending outbox row (0 with none): the relays\u2019 lag', ['relay'], () =>
        relays.backlogGauge((backlog) => (backlog.oldestPendingMs ?? 0) / 1000),
      ),
    },
    {
      name: 'anomalies_total',
      make: counter('Anomalies raised by an anomaly detector, by kind (replays, mismatches)', ['kind'], () =>
        t.anomalies.samples('kind'),
      ),
    },
  ]
}

/** A family as registered: its full name and the metric object the registry holds. */
export interface Registered {
  name: string
  metric: unknown
}

/**
 * Register every family in `registry`; throws, registering none, when one of the names is taken
 * (a second `idemMetrics()` on one registry).
 */
export function registerFamilies(registry: Registry, tallies: Tallies, options: ResolvedOptions): Registered[] {
  const all = families(tallies, options)
  const names = all.map((family) => `${options.prefix}${family.name}`)
  for (const name of names) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw new Error(
        `idemMetrics: A metric with the name ${name} has already been registered (another idemMetrics() on this registry? close() it, or give this one another registry or prefix)`,
      )
    }
  }
  return all.map((family, i) => {
    const name = names[i] as string
    return { name, metric: family.make(registry, name) }
  })
}
