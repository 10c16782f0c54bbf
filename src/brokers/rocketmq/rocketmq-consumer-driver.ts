// The part of `rocketmq-client-nodejs` (the Apache RocketMQ 5 client, gRPC to the proxy) the
// consumer uses, typed by shape so that nothing here depends on the driver's classes and tests can
// hand in a double. A started SimpleConsumer and a started Producer fit.

import type { RocketMQOutgoingLike } from './rocketmq-producer-driver.js'

/** One received message (the driver's MessageView). */
export interface MessageViewLike {
  /** Set by the producing client, once per message: a send it retried keeps it. */
  readonly messageId: string
  readonly topic: string
  readonly body: Buffer
  /** The body failed its checksum on the way. */
  readonly corrupted?: boolean
  readonly tag?: string | undefined
  /** Message keys set by the producer (`keys: [...]`); empty when none. */
  readonly keys: readonly string[]
  /** User properties set by the producer. */
  readonly properties: ReadonlyMap<string, string>
  /** 1 on the first delivery (the broker's reconsume count plus one). */
  readonly deliveryAttempt?: number | undefined
  /** FIFO topics: messages of one group are delivered in order. */
  readonly messageGroup?: string | undefined
}

/**
 * A started SimpleConsumer. `ack` and `changeInvisibleDuration` take the view itself: the driver
 * reads its current receipt handle, and `changeInvisibleDuration` replaces it with the new one.
 */
export interface SimpleConsumerLike<M extends MessageViewLike = MessageViewLike> {
  /** Long-polls (the consumer's awaitDuration) for at most `maxMessageNum` messages, invisible to others for `invisibleDuration` ms. */
  receive(maxMessageNum: number, invisibleDuration: number): Promise<M[]>
  ack(message: M): Promise<void>
  /** The message comes back `invisibleDuration` ms from now unless acknowledged before. */
  changeInvisibleDuration(message: M, invisibleDuration: number): Promise<void>
}

/**
 * Where dead-letter copies are sent: a started Producer (any object with its `send`). `send`
 * resolves once the broker stored the message (its SendReceipt).
 */
export interface DeadLetterProducerLike {
  send(message: RocketMQOutgoingLike): Promise<unknown>
}
