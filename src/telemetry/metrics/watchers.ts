// What watching each kind of target attaches: listeners (and, for an Idempotency, a probe) that
// only add to tallies, and the members read at scrape. Each returns the function that detaches it.
// Listeners are on the hot path: a Map lookup and a few additions, never a prom-client call.

import type { Idempotency } from '../../core/idempotency.js'
import type { HttpIdempotency } from '../../http/core/http-idempotency.js'
import type { OutboxRelay } from '../../outbox/relay.js'
import type { AnomalySource } from '../core/anomaly.js'
import type { ConsumerMember, ConsumerStats } from './consumer-tally.js'
import type { LabelCounts } from './label-counts.js'
import type { RelayGroup } from './relay-tally.js'
import type { Tallies } from './tallies.js'

/** The store calls whose failure means the key was never claimed: the call failed open or was refused. */
const CLAIMS = new Set(['begin', 'beginMany'])

const all =
  (detach: readonly (() => void)[]): (() => void) =>
  () => {
    for (const off of detach) off()
  }

export function watchIdempotency(idem: Idempotency, { scopes, store }: Tallies): () => void {
  return all([
    idem.on('executed', (event) => {
      const stats = scopes.of(event.scope)
      if (event.failed) stats.finalError++
      else stats.executed++
      stats.duration.observe(event.durationMs / 1000)
    }),
    idem.on('replayed', (event) => {
      scopes.of(event.scope).replayed++
    }),
    idem.on('in_progress', (event) => {
      // A caller waiting for the key polls: each poll is not an outcome.
      if (!event.waiting) scopes.of(event.scope).inProgress++
    }),
    idem.on('mismatch', (event) => {
      scopes.of(event.scope).mismatch++
    }),
    idem.on('takeover', (event) => {
      scopes.of(event.scope).takeovers++
    }),
    idem.on('released', (event) => {
      scopes.of(event.scope).released++
    }),
    idem.on('lease_lost', (event) => {
      scopes.of(event.scope).leaseLost++
    }),
    idem.on('store_error', (event) => {
      store.errors.add(event.operation)
      // failOpen is set once per call that went on unprotected: at its claim, or at its last
      // attempt to store an outcome (no `executed` then). Any other failure to store an outcome is
      // a store error of a call counted otherwise (executed, lease_lost…).
      if (event.failOpen) scopes.of(event.scope).failedOpen++
      else if (CLAIMS.has(event.operation)) scopes.of(event.scope).storeUnavailable++
    }),
    idem.instrument({
      storeCall(operation, _startedAt, durationMs) {
        store.observe(operation, durationMs)
      },
    }),
  ])
}

/** The HTTP core's own events (its `idem` is watched apart, once). */
export function watchHttp(http: HttpIdempotency, tallies: Tallies): () => void {
  return http.on('response', (event) => tallies.http.count(event))
}

export function watchConsumer(member: ConsumerMember, stats: ConsumerStats): () => void {
  const { consumer } = member
  stats.members.add(member)
  return all([
    () => stats.members.delete(member),
    consumer.on('received', () => {
      stats.received++
    }),
    consumer.on('settled', (event) => stats.onSettled(event)),
    consumer.on('broker_error', (event) => stats.brokerErrors.add(event.operation)),
  ])
}

export function watchRelay(relay: OutboxRelay, group: RelayGroup): () => void {
  group.add(relay)
  return () => group.remove(relay)
}

export function watchAnomalies(source: AnomalySource, kinds: LabelCounts): () => void {
  return source.on('anomaly', (anomaly) => kinds.add(anomaly.kind))
}
