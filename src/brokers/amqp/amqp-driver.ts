// The part of amqplib's channel API that idem/amqp uses, typed structurally so that importing the
// adapter never loads amqplib: a ChannelModel (or a recovering one, `connect(url, { recovery: true })`),
// its Channel and its ConfirmChannel fit.

/** A delivered message, as amqplib hands it to a consumer. */
export interface AmqpMessage {
  content: Buffer
  fields: { deliveryTag: number; redelivered: boolean; exchange: string; routingKey: string }
  properties: AmqpMessageProperties
}

export interface AmqpMessageProperties {
  // amqplib types every property as `any | undefined`: the broker passes on whatever the publisher set.
  readonly messageId?: unknown
  readonly headers?: Record<string, unknown> | undefined
  readonly contentType?: unknown
  readonly contentEncoding?: unknown
  readonly correlationId?: unknown
  readonly replyTo?: unknown
  readonly type?: unknown
  readonly appId?: unknown
  readonly timestamp?: unknown
  readonly priority?: unknown
}

/** amqplib's `Options.Publish`, the fields Idem sets. */
export interface AmqpPublishOptions {
  messageId?: string
  persistent?: boolean
  mandatory?: boolean
  headers?: Record<string, unknown>
  contentType?: string
  contentEncoding?: string
  correlationId?: string
  replyTo?: string
  type?: string
  appId?: string
  timestamp?: number
  priority?: number
}

// biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type; events carry different arguments
type Listener = (...args: any[]) => void

interface Emitter {
  on(event: string, listener: Listener): unknown
  once(event: string, listener: Listener): unknown
  removeListener(event: string, listener: Listener): unknown
}

/** A channel in manual-acknowledgement mode. */
export interface AmqpChannel extends Emitter {
  consume(
    queue: string,
    onMessage: (message: AmqpMessage | null) => void,
    options?: { noAck?: boolean; consumerTag?: string; exclusive?: boolean; arguments?: unknown },
  ): Promise<{ consumerTag: string }>
  cancel(consumerTag: string): Promise<unknown>
  prefetch(count: number, global?: boolean): Promise<unknown>
  ack(message: AmqpMessage, allUpTo?: boolean): void
  /** basic.reject: one message, `requeue` always passed explicitly. */
  reject(message: AmqpMessage, requeue?: boolean): void
  /**
   * queue.declare passive: the queue's ready messages (not those delivered and unacknowledged) and
   * consumers. A queue that does not exist closes the channel (404), so `lag()` asks on a channel of its own.
   */
  checkQueue(queue: string): Promise<{ queue: string; messageCount: number; consumerCount: number }>
  close(): Promise<void>
}

/** A channel in confirm mode: the broker acknowledges (or refuses) every publish. */
export interface AmqpConfirmChannel extends Emitter {
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpPublishOptions,
    callback: (error: unknown, ok: unknown) => void,
  ): boolean
  assertExchange(exchange: string, type: string, options?: { durable?: boolean }): Promise<unknown>
  assertQueue(queue: string, options?: { durable?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>
  bindQueue(queue: string, source: string, pattern: string): Promise<unknown>
  close(): Promise<void>
}

/** What the consumer opens its channels on: a ChannelModel, or a recovering one. */
export interface AmqpConnection {
  createChannel(): Promise<AmqpChannel>
  createConfirmChannel(): Promise<AmqpConfirmChannel>
}
