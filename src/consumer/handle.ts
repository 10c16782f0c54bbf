// What every broker adapter (consumeAmqp, consumeJetStream, consumeRedisStream, consumeMqtt) is
// built from and what it returns: one construction rule and one handle type for the four.

import { warnDeprecated } from '../contract/deprecation.js'
import type { Listener } from '../core/emitter.js'
import { IdempotentConsumer } from './consumer.js'
import type { ConsumerEvents, ConsumerListeners, ConsumerOptions } from './types.js'

/**
 * The consumer part of an adapter's options, flat beside the broker's own: either the consumer
 * core's options (`{ idem, handler }` in run mode, `{ idem, db, transactionHandler }` in
 * transaction mode, with `concurrency`, `maxAttempts`, `on`, …), or a ready-made
 * `IdempotentConsumer` as `consumer` (plus, optionally, listeners in `on`).
 */
export type ConsumerSource<P, Tx = unknown> =
  | (ConsumerOptions<P, Tx> & { consumer?: never })
  | { consumer: IdempotentConsumer<P, Tx>; on?: ConsumerListeners }
  /** @deprecated Pass the consumer options flat beside the broker's (`{ client, queue, idem, handler }`). */
  | { consumer: ConsumerOptions<P, Tx>; on?: ConsumerListeners }

/** Counters every adapter keeps. */
export interface ConsumerStats {
  /** Messages dead-lettered before reaching the core (no usable key, payload not decodable). */
  rejected: number
}

/**
 * What `consumeAmqp`, `consumeJetStream`, `consumeRedisStream` and `consumeMqtt` resolve to. `S`
 * holds a broker's own counters besides `rejected`.
 *
 * @example
 * ```ts
 * const handle = await consumeAmqp({ client: connection, queue: 'orders', idem, handler })
 * const stop = handle.on('settled', (result) => metrics.count(result.outcome))
 * // …
 * await handle.close() // stop taking messages, let in-flight work finish, hand back the rest
 * ```
 */
export interface ConsumerHandle<P = unknown, Tx = unknown, S extends ConsumerStats = ConsumerStats> {
  /** The core this adapter feeds: `inFlight`, `capacity`, `maxAttempts` and its events. */
  readonly consumer: IdempotentConsumer<P, Tx>
  readonly stats: Readonly<S>
  /**
   * Listen to the core's events (`received`, `settled`, `broker_error`); returns a function that
   * stops listening. Attached after the adapter resolved, a listener may miss the first deliveries
   * of a non-empty queue: give listeners that must see every delivery in the `on` option instead.
   */
  on<K extends keyof ConsumerEvents>(name: K, listener: Listener<ConsumerEvents, K>): () => void
  off<K extends keyof ConsumerEvents>(name: K, listener: Listener<ConsumerEvents, K>): void
  /**
   * Messages the broker holds for this consumer that it has not yet received (or, where the broker
   * counts it so, not yet acknowledged), asked of the broker now; undefined where the broker does
   * not say. Present on the adapters whose broker gives it: AMQP (the queue's ready messages),
   * JetStream (the consumer's pending count), Redis Streams (the group's lag), Kafka (the group's
   * lag over its assigned partitions).
   */
  lag?(): Promise<number | undefined>
  /** Resolves when the adapter stopped taking messages: after `close()`, or once the connection closed for good. */
  readonly done: Promise<void>
  /**
   * Stop taking messages, let the core finish in-flight work (up to its `shutdownTimeout`) or hand
   * it back, and release what the adapter opened. Nothing unfinished is acknowledged; a client you
   * passed stays open.
   */
  close(): Promise<void>
}

/** True for a ready-made consumer core: the one test every adapter uses. */
export function isIdempotentConsumer<P, Tx>(value: unknown): value is IdempotentConsumer<P, Tx> {
  return value instanceof IdempotentConsumer
}

/** The consumer an adapter feeds, and the core options it was built from (none for a ready-made one). */
export interface ResolvedConsumer<P, Tx> {
  core: IdempotentConsumer<P, Tx>
  options: ConsumerOptions<P, Tx> | undefined
}

/**
 * The consumer core of an adapter's options (`adapter` names it in messages): a ready-made one
 * given as `consumer` (with the `on` listeners attached), or one built from the flat options.
 * Listeners are attached here, before the adapter receives anything.
 */
export function resolveConsumer<P, Tx>(source: ConsumerSource<P, Tx>, adapter: string): ResolvedConsumer<P, Tx> {
  if (source === null || typeof source !== 'object') throw new TypeError(`${adapter} needs an options object`)
  const given = (source as { consumer?: unknown }).consumer
  if (isIdempotentConsumer<P, Tx>(given)) {
    const core: IdempotentConsumer<P, Tx> = given
    if (source.on !== undefined) core.listen(source.on)
    return { core, options: undefined }
  }
  if (given !== undefined) {
    if (given === null || typeof given !== 'object') {
      throw new TypeError(
        `${adapter}: consumer must be an IdempotentConsumer (or leave it out and pass idem and handler)`,
      )
    }
    warnDeprecated(
      `${adapter}({ consumer: { idem, handler, … } })`,
      `${adapter}({ idem, handler, … }) (the consumer options flat beside the broker's)`,
    )
    const nested = given as ConsumerOptions<P, Tx>
    const options = source.on === undefined ? nested : { ...nested, on: mergeListeners(nested.on, source.on) }
    return { core: new IdempotentConsumer(options), options }
  }
  const options = source as ConsumerOptions<P, Tx>
  if (options.idem === undefined) {
    throw new TypeError(
      `${adapter} needs idem (an Idempotency) with a handler, or db and a transactionHandler; or a ready-made consumer`,
    )
  }
  return { core: new IdempotentConsumer(options), options }
}

function mergeListeners(a: ConsumerListeners | undefined, b: ConsumerListeners): ConsumerListeners {
  if (a === undefined) return b
  const merged: Record<string, (event: never) => void> = {}
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof ConsumerListeners>) {
    const first = a[name] as ((event: never) => void) | undefined
    const second = b[name] as ((event: never) => void) | undefined
    merged[name] =
      first === undefined || second === undefined
        ? ((first ?? second) as (event: never) => void)
        : (event: never) => {
            first(event)
            second(event)
          }
  }
  return merged as ConsumerListeners
}

/**
 * The handle every adapter returns: `close` and `done` are the adapter's, the rest delegates to
 * the core. `extra` holds a broker's own fields (Redis Streams' `consumerName`).
 */
export function consumerHandle<P, Tx, S extends ConsumerStats, X extends object = object>(
  core: IdempotentConsumer<P, Tx>,
  stats: S,
  lifecycle: { close(): Promise<void>; done: Promise<void> },
  extra?: X,
): ConsumerHandle<P, Tx, S> & X {
  let closing: Promise<void> | undefined
  return {
    ...(extra as X),
    consumer: core,
    stats,
    on: (name, listener) => core.on(name, listener),
    off: (name, listener) => core.off(name, listener),
    done: lifecycle.done,
    close: () => {
      closing ??= lifecycle.close()
      return closing
    },
  }
}
