// The part of the `nats` (v2) client the JetStream adapter uses, typed by shape so that nothing
// here depends on the driver's classes and tests can hand in a double. A real NatsConnection fits.

/** Message headers (the driver's MsgHdrs). */
export interface NatsHeadersLike {
  get(key: string): string
  set(key: string, value: string): void
  append(key: string, value: string): void
  has(key: string): boolean
  keys(): string[]
  values(key: string): string[]
}

/** What JetStream says about one delivery (the driver's DeliveryInfo). */
export interface JetStreamDeliveryInfo {
  readonly stream: string
  readonly consumer: string
  /** 1 on the first delivery. */
  readonly deliveryCount: number
  readonly streamSequence: number
}

/** A message delivered by a JetStream consumer (the driver's JsMsg). */
export interface JsMsgLike {
  readonly subject: string
  readonly data: Uint8Array
  readonly headers: NatsHeadersLike | undefined
  readonly info: JetStreamDeliveryInfo
  ack(): void
  ackAck(options?: Partial<{ timeout: number }>): Promise<boolean>
  nak(millis?: number): void
  working(): void
  term(reason?: string): void
}

/** A pull request in progress: its messages, and a way to stop it early. */
export interface FetchedMessages extends AsyncIterable<JsMsgLike> {
  stop(error?: Error): void
}

/** A durable pull consumer (the driver's Consumer). */
export interface PullConsumerLike {
  info(cached?: boolean): Promise<ConsumerInfoLike>
  fetch(options: { max_messages: number; expires: number }): Promise<FetchedMessages>
}

export interface ConsumerInfoLike {
  readonly name: string
  readonly stream_name: string
  /** Messages of the stream (matching the filter) not yet delivered to this consumer. */
  readonly num_pending?: number
  /** Messages delivered and not yet acknowledged (in handlers, or waiting out a nak delay). */
  readonly num_ack_pending?: number
  readonly config: {
    readonly ack_policy: string
    /** Nanoseconds. */
    readonly ack_wait?: number
    readonly max_deliver?: number
  }
}

export interface PubAckLike {
  readonly stream: string
  readonly seq: number
  /** The stream already held a message with this msgID inside its duplicate window. */
  readonly duplicate: boolean
}

export interface JetStreamPublishOptionsLike {
  /** Optional only to match the driver's signature: this adapter always sets it. */
  msgID?: string
  timeout?: number
  headers?: NatsHeadersLike
  expect?: { streamName?: string }
}

/** The driver's JetStreamClient. */
export interface JetStreamClientLike {
  publish(subject: string, payload: Uint8Array, options?: JetStreamPublishOptionsLike): Promise<PubAckLike>
  consumers: { get(stream: string, name: string): Promise<PullConsumerLike> }
  streams: { get(stream: string): Promise<{ info(cached?: boolean): Promise<{ created: string }> }> }
}

/** The driver's NatsConnection. */
export interface NatsConnectionLike {
  jetstream(): JetStreamClientLike
  /** Round trip to the server: everything published before (acks included) has left the client. */
  flush(): Promise<void>
  isClosed(): boolean
}
