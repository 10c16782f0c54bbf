// The receive loop over one consumer socket at a time, in the WebSocket API's pull mode: the broker
// sends a message only against a permit, and permits are granted for the core's free capacity, so
// no more messages wait in this process than the core can take. When the socket closes, the
// broker hands that socket's unacknowledged messages to other consumers (or to the next socket):
// the loop drops what it had not handed to the core yet and opens a new socket, with backoff.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Delivery, DeliveryResult } from '../../consumer/types.js'
import type { DeadLetterCopy } from './pulsar-dead-letter.js'
import { ack, isMessage, nack, type Translation } from './pulsar-delivery.js'
import type { PulsarMessage, PulsarSocket } from './pulsar-driver.js'

/** The part of the consumer core the loop drives (an IdempotentConsumer). */
export interface ConsumerCore<P> {
  handle(delivery: Delivery<P>): Promise<DeliveryResult>
  handleBatch(deliveries: readonly Delivery<P>[]): Promise<DeliveryResult[]>
  readonly capacity: number
  readonly inFlight: number
  /** Resolves once `capacity >= atLeast` (at most the concurrency is waited for). */
  whenCapacity(atLeast: number): Promise<void>
}

/** Counters the loop keeps up to date. */
export interface ReceiveStats {
  /** Sockets opened again after one closed. */
  reconnects: number
  /** Permits granted: messages asked of the broker. */
  permits: number
  rejected: number
}

export interface ReceiverOptions<P> {
  /** Opens a new consumer socket. */
  open(): Promise<PulsarSocket>
  translate(message: PulsarMessage, socket: PulsarSocket): Translation<P>
  deadLetter: DeadLetterCopy
  /** Hand messages that arrived together to `handleBatch` (one claim round trip), else one by one. */
  batch: boolean
  /** Most permits granted at once. */
  maxBatch: number
  onError(error: unknown): void
}

const MAX_BACKOFF_MS = 5000

export class Receiver<P> {
  readonly done: Promise<void>
  readonly #core: ConsumerCore<P>
  readonly #stats: ReceiveStats
  readonly #options: ReceiverOptions<P>
  readonly #stop = new AbortController()
  #socket: PulsarSocket | undefined
  /** Permits granted on the current socket whose messages were not handed to the core yet. */
  #granted = 0
  #queued: Delivery<P>[] = []
  #flushScheduled = false
  #changed: (() => void) | undefined

  /** Starts receiving on `first`, a socket already opened (so that a refused one failed the caller). */
  constructor(first: PulsarSocket, core: ConsumerCore<P>, stats: ReceiveStats, options: ReceiverOptions<P>) {
    this.#core = core
    this.#stats = stats
    this.#options = options
    this.done = this.#run(first)
  }

  /** Stop granting permits; messages still arriving are handed back. The socket stays open for the core's acks. */
  stop(): Promise<void> {
    this.#stop.abort()
    this.#wake()
    return this.done
  }

  /** Close the current socket (after stop() and once the core finished: its acks went out on it). */
  closeSocket(): void {
    this.#socket?.close()
  }

  async #run(first: PulsarSocket): Promise<void> {
    let socket: PulsarSocket | undefined = first
    let failures = 0
    while (!this.#stop.signal.aborted) {
      if (socket === undefined) {
        try {
          socket = await this.#options.open()
          this.#stats.reconnects++
        } catch (error) {
          this.#options.onError(error)
          await this.#pause(failures++)
          continue
        }
      }
      const served = Date.now()
      await this.#serve(socket)
      if (this.#stop.signal.aborted) break
      socket = undefined
      // A socket that lived a while resets the backoff; one closed at once (broker restarting) backs off.
      if (Date.now() - served > MAX_BACKOFF_MS) failures = 0
      await this.#pause(failures++)
    }
  }

  /** Receive on `socket` until it closes or the loop stops. */
  async #serve(socket: PulsarSocket): Promise<void> {
    this.#socket = socket
    this.#granted = 0
    const closed = new Promise<void>((resolve) => {
      socket.onClose = (reason) => {
        if (!this.#stop.signal.aborted) this.#options.onError(new Error(`the Pulsar consumer socket ${reason}`))
        resolve()
      }
    })
    socket.onMessage = (frame) => this.#accept(socket, frame)
    let isClosed = !socket.open
    void closed.then(() => {
      isClosed = true
      this.#wake()
    })
    const core = this.#core
    while (!this.#stop.signal.aborted && !isClosed) {
      const concurrency = core.capacity + core.inFlight
      const want = Math.max(1, Math.min(this.#options.maxBatch, Math.ceil(concurrency / 2)))
      const target = Math.min(concurrency, this.#granted + want)
      const changed = new Promise<void>((resolve) => {
        this.#changed = resolve
      })
      if (this.#granted < concurrency && core.capacity >= target) {
        // A worthwhile grant: half the core's slots (at most maxBatch), or all that is left.
        const permits = Math.min(this.#options.maxBatch, core.capacity - this.#granted)
        this.#granted += permits
        this.#stats.permits += permits
        socket.send({ type: 'permit', permitMessages: permits }).catch(() => {
          // The socket closed: onClose follows and ends this loop.
        })
        continue
      }
      await Promise.race(this.#granted < concurrency ? [core.whenCapacity(target), changed] : [changed])
    }
    if (!this.#stop.signal.aborted || isClosed) {
      // Its unacknowledged messages went back to the broker: what was not handed over is dropped.
      this.#queued = []
      this.#granted = 0
      if (this.#socket === socket) this.#socket = undefined
    }
  }

  #accept(socket: PulsarSocket, frame: unknown): void {
    if (!isMessage(frame) || socket !== this.#socket) return
    if (this.#stop.signal.aborted) {
      // Received after stop(): hand it straight back rather than start work during shutdown.
      nack(socket, frame).catch((error: unknown) => this.#options.onError(error))
      return
    }
    const translated = this.#options.translate(frame, socket)
    if (!translated.ok) {
      // No key or no payload: nothing the core could claim. It is poison, never requeued.
      this.#stats.rejected++
      this.#granted = Math.max(0, this.#granted - 1)
      this.#wake()
      this.#options
        .deadLetter(frame, translated.copyId, translated.reason)
        .then(() => ack(socket, frame))
        .catch((error: unknown) => this.#options.onError(error))
      return
    }
    this.#queued.push(translated.delivery)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      // Messages read from one socket chunk arrive in one turn of the event loop: one batch.
      setImmediate(() => this.#flush())
    }
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#queued.length === 0) return
    const deliveries = this.#queued
    this.#queued = []
    this.#granted = Math.max(0, this.#granted - deliveries.length)
    // The core settles each delivery (ack, retry or dead-letter) itself and never rejects.
    if (this.#options.batch) void this.#core.handleBatch(deliveries)
    else for (const delivery of deliveries) void this.#core.handle(delivery)
    this.#wake()
  }

  #wake(): void {
    const changed = this.#changed
    this.#changed = undefined
    changed?.()
  }

  async #pause(failures: number): Promise<void> {
    await sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures), undefined, { signal: this.#stop.signal }).catch(() => {})
  }
}
