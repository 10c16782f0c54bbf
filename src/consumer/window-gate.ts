// The dedup window in front of the consumer core (the `window` option, docs/window.md): a first
// delivery whose key the window saw within its span is acknowledged unrun; the others go on to the
// claim. A window that cannot be asked fails the delivery as a store that is down does (retried).

import type { Decision } from './decide.js'
import { type Delivery, DeliveryOutcome, type DeliveryResult, type DeliveryWindow } from './types.js'

/** What the gate needs of the consumer: its window and its ways to settle a delivery. */
export interface WindowGate<P> {
  window: DeliveryWindow
  sourceOf(delivery: Delivery<P>): string
  /** Through the lanes: claim, run, complete, ack. */
  handle(delivery: Delivery<P>): Promise<DeliveryResult>
  handleBatch(deliveries: readonly Delivery<P>[]): Promise<DeliveryResult[]>
  /** Tell the broker `decision` without the lanes, and report it. */
  settleUnrun(delivery: Delivery<P>, decision: Decision): Promise<DeliveryResult>
  /** The decision for a delivery that failed before its claim. */
  refused(delivery: Delivery<P>, error: unknown): Decision
}

/** A repeat the dedup window dropped: acknowledged unrun, reported as a duplicate of completed work. */
const WINDOW_REPEAT: Decision = {
  action: 'ack',
  outcome: DeliveryOutcome.REPLAYED,
  reason: 'window: a repeat within the dedup window',
}

/** Ask the window first: a repeat is acked unrun; the window down is retried like a store that is down. */
export function windowed<P>(gate: WindowGate<P>, delivery: Delivery<P>): Promise<DeliveryResult> {
  let source: string
  try {
    source = gate.sourceOf(delivery)
  } catch (error) {
    return gate.settleUnrun(delivery, gate.refused(delivery, error))
  }
  return gate.window.seen(source, delivery.key).then(
    (repeat) =>
      repeat
        ? gate.settleUnrun(delivery, WINDOW_REPEAT)
        : gate.handle(delivery).then((result) => forgetUndone(gate.window, source, result)),
    (error: unknown) => gate.settleUnrun(delivery, gate.refused(delivery, error)),
  )
}

/** The same for a batch: one `seenMany` round trip, then the fresh ones claimed together. */
export function windowedBatch<P>(gate: WindowGate<P>, deliveries: readonly Delivery<P>[]): Promise<DeliveryResult[]> {
  const asked: number[] = []
  const entries: { source: string; id: string }[] = []
  try {
    for (let i = 0; i < deliveries.length; i++) {
      const delivery = deliveries[i] as Delivery<P>
      // A redelivery may be of a message whose first handling never finished: the record decides.
      if (delivery.deliveryCount > 1) continue
      asked.push(i)
      entries.push({ source: gate.sourceOf(delivery), id: delivery.key })
    }
  } catch (error) {
    return Promise.all(deliveries.map((d) => gate.settleUnrun(d, gate.refused(d, error))))
  }
  if (asked.length === 0) return gate.handleBatch(deliveries)
  return gate.window.seenMany(entries).then(
    (repeats) => {
      const dropped: Promise<DeliveryResult>[] = []
      const droppedAt: number[] = []
      const fresh: Delivery<P>[] = []
      const freshAt: number[] = []
      const sources: (string | undefined)[] = []
      let j = 0
      for (let i = 0; i < deliveries.length; i++) {
        const delivery = deliveries[i] as Delivery<P>
        let source: string | undefined
        if (asked[j] === i) {
          source = (entries[j] as { source: string }).source
          if (repeats[j++] === true) {
            dropped.push(gate.settleUnrun(delivery, WINDOW_REPEAT))
            droppedAt.push(i)
            continue
          }
        }
        fresh.push(delivery)
        freshAt.push(i)
        sources.push(source)
      }
      const handled = gate.handleBatch(fresh).then((results) =>
        results.map((result, k) => {
          const source = sources[k]
          return source === undefined ? result : forgetUndone(gate.window, source, result)
        }),
      )
      return Promise.all([Promise.all(dropped), handled]).then(([d, h]) => {
        const out: DeliveryResult[] = new Array(deliveries.length)
        for (let k = 0; k < d.length; k++) out[droppedAt[k] as number] = d[k] as DeliveryResult
        for (let k = 0; k < h.length; k++) out[freshAt[k] as number] = h[k] as DeliveryResult
        return out
      })
    },
    (error: unknown) => Promise.all(deliveries.map((d) => gate.settleUnrun(d, gate.refused(d, error)))),
  )
}

/**
 * A marked delivery that was handed back or dead-lettered leaves the window, so that a copy of it
 * published again is not dropped for a message that was never handled. Best effort: if it fails,
 * the broker's own redelivery still passes (it bypasses the window); only a copy published again
 * within the window is dropped.
 */
function forgetUndone(window: DeliveryWindow, source: string, result: DeliveryResult): DeliveryResult {
  if (result.outcome === DeliveryOutcome.RETRIED || result.outcome === DeliveryOutcome.DEAD_LETTERED) {
    window.forget(source, result.key).catch(() => {})
  }
  return result
}
