// `idemMetrics()`: Prometheus metrics, through prom-client, for the Idempotency instances, HTTP
// cores, consumers, outbox relays and anomaly detectors it watches. Listeners only add to plain
// tallies (tallies.ts); prom-client reads them at scrape (families.ts), so that watching costs
// a run next to nothing.

import { type Registry, register } from 'prom-client'
import type { Idempotency } from '../../core/idempotency.js'
import { targetOf, type Watchable } from '../core/targets.js'
import type { ConsumerMember } from './consumer-tally.js'
import { type Registered, registerFamilies } from './families.js'
import { type IdemMetricsOptions, nameOf, resolveOptions, type WatchOptions } from './options.js'
import { Tallies } from './tallies.js'
import { watchAnomalies, watchConsumer, watchHttp, watchIdempotency, watchRelay } from './watchers.js'

export interface IdemMetrics {
  /** The registry the metrics are registered in (serve `await registry.metrics()` on `/metrics`). */
  readonly registry: Registry
  /**
   * Count what `target` does: an `Idempotency`, an `HttpIdempotency` (its `idem` too), a consumer
   * (an `IdempotentConsumer` or an adapter's handle, which may also know the broker's lag), an
   * `OutboxRelay`, or an anomaly detector. `name` is the `consumer` or `relay` label (default
   * `'default'`). A target watched twice (an `HttpIdempotency` and its `idem`, say) is counted
   * once, until each watch is stopped. Returns a function that stops this watch. Throws a
   * TypeError for anything else.
   */
  watch(target: Watchable, options?: WatchOptions): () => void
  /** Stop watching everything and remove these metrics from the registry; `watch` then throws. */
  close(): void
}

/** One target watched, by however many `watch` calls. */
interface Watch {
  count: number
  /** The `consumer` or `relay` label it is counted under. */
  name: string | undefined
  detach: () => void
}

class PrometheusMetrics implements IdemMetrics {
  readonly registry: Registry
  readonly #tallies: Tallies
  readonly #families: Registered[]
  readonly #watched = new Map<object, Watch>()
  /** The consumers watched, by their core. */
  readonly #members = new Map<object, ConsumerMember>()
  #closed = false

  constructor(options: IdemMetricsOptions) {
    const resolved = resolveOptions(options)
    this.registry = resolved.registry ?? register
    this.#tallies = new Tallies(resolved)
    this.#families = registerFamilies(this.registry, this.#tallies, resolved)
  }

  watch(target: Watchable, options?: WatchOptions): () => void {
    if (this.#closed) throw new Error('idemMetrics: watch() after close()')
    const found = targetOf(target, 'idemMetrics().watch')
    const tallies = this.#tallies
    switch (found.kind) {
      case 'idempotency':
        return this.#idempotency(found.idem)
      case 'http': {
        const { http } = found
        const stopHttp = this.#share(http, undefined, () => watchHttp(http, tallies))
        const stopIdem = this.#idempotency(http.idem)
        return () => {
          stopHttp()
          stopIdem()
        }
      }
      case 'consumer': {
        const name = nameOf(options)
        const { consumer, handle } = found
        const stop = this.#share(consumer, name, () => {
          const member: ConsumerMember = { consumer, handle }
          this.#members.set(consumer, member)
          const detach = watchConsumer(member, tallies.consumers.of(name))
          return () => {
            this.#members.delete(consumer)
            detach()
          }
        })
        // Watched first as a core, then through its adapter's handle: the handle may know the lag.
        const member = this.#members.get(consumer)
        if (member !== undefined) member.handle ??= handle
        return stop
      }
      case 'relay': {
        const name = nameOf(options)
        const { relay } = found
        return this.#share(relay, name, () => watchRelay(relay, tallies.relays.of(name)))
      }
      case 'anomalies': {
        const { source } = found
        return this.#share(source, undefined, () => watchAnomalies(source, tallies.anomalies))
      }
    }
  }

  close(): void {
    this.#closed = true
    for (const watch of this.#watched.values()) watch.detach()
    this.#watched.clear()
    for (const { name, metric } of this.#families) {
      // Only ours: a metric registered under the name since (after removing ours) stays.
      if ((this.registry.getSingleMetric(name) as unknown) === metric) this.registry.removeSingleMetric(name)
    }
  }

  #idempotency(idem: Idempotency): () => void {
    return this.#share(idem, undefined, () => watchIdempotency(idem, this.#tallies))
  }

  /** Attach to `key` on its first watch; detach when the last watch of it stops. */
  #share(key: object, name: string | undefined, attach: () => () => void): () => void {
    let watch = this.#watched.get(key)
    if (watch === undefined) {
      watch = { count: 0, name, detach: attach() }
      this.#watched.set(key, watch)
    } else if (watch.name !== name) {
      throw new Error(`idemMetrics: this target is watched already, as "${watch.name}"; stop that watch first`)
    }
    watch.count++
    const current = watch
    let stopped = false
    return () => {
      if (stopped) return
      stopped = true
      if (--current.count > 0 || this.#watched.get(key) !== current) return
      this.#watched.delete(key)
      current.detach()
    }
  }
}

/**
 * Prometheus metrics for Idem, through prom-client (an optional peer dependency, >=15 <16).
 * Every family is registered at once, prefixed `idem_`: requests by scope and outcome, lease
 * takeovers, store errors and durations, function durations, HTTP requests, consumers (received,
 * settled, broker errors, durations, in flight, lag), outbox relays (published, retried, failed,
 * errors, pending, failed rows, oldest pending age) and anomalies. Labels never carry a key, a
 * record id or a principal, and each label has at most `maxLabelValues` values (the rest count
 * under `other`). A second `idemMetrics()` on the same registry throws, naming the metric.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client'
 * import { idemMetrics } from 'idem/metrics'
 *
 * const metrics = idemMetrics({ registry: new Registry() })
 * metrics.watch(idem)
 * metrics.watch(consumerHandle, { name: 'orders' })
 * metrics.watch(relay, { name: 'orders-outbox' })
 * app.get('/metrics', async (_req, res) => {
 *   res.type(metrics.registry.contentType).send(await metrics.registry.metrics())
 * })
 * ```
 */
export function idemMetrics(options: IdemMetricsOptions = {}): IdemMetrics {
  return new PrometheusMetrics(options)
}
