// What every producer and the outbox relay share: a message with a stable id, published only
// when the broker confirmed it. A retry after a lost confirmation reuses the same id, so the
// consumer (or the broker's own dedup window) recognises the duplicate.

export interface OutgoingMessage<P = unknown> {
  /** Stable across retries: the caller's, or one generated once with `newMessageId()`. Printable ASCII, 1–255 characters. */
  readonly id: string
  readonly payload: P
  /** Broker-specific destination (exchange/routing key, subject, stream, topic); the producer's default when absent. */
  readonly destination?: string
  /** Extra headers / user properties, as strings. */
  readonly headers?: Readonly<Record<string, string>>
}

export interface Producer {
  /**
   * Publish `message` and resolve once the broker confirmed it (AMQP publisher confirm, JetStream
   * PubAck, XADD reply, MQTT PUBACK/PUBCOMP). Reject when it did not (the AMQP and MQTT
   * producers with a `PublishNotConfirmedError`); publishing again with the same id is then safe.
   */
  publish(message: OutgoingMessage): Promise<void>
  /** Release what the producer opened: a client passed as an instance stays open, one made by a factory is closed. */
  close?(): Promise<void>
}
