// The part of Pulsar's WebSocket API the adapter speaks (JSON frames over one socket per consumer
// or producer, served by the broker's web service under /ws/v2), and the socket it speaks it over,
// typed by shape so that tests can hand in a double. The native `pulsar-client` is not used: it
// needs a C++ library; the WebSocket API needs only the `ws` package.

/** What a consumer socket receives for each message. */
export interface PulsarMessage {
  /** Base64 of the broker's MessageIdData: unique in its topic; what acks and negative acks name. */
  readonly messageId: string
  /** The payload, base64. */
  readonly payload: string
  readonly properties?: Readonly<Record<string, string>>
  readonly publishTime?: string
  /** 0 on the first delivery: negative acks (and ack timeouts) count here, not reconnects. */
  readonly redeliveryCount?: number
  readonly eventTime?: string
  /** The message's key (partition and Key_Shared routing), when the producer set one. */
  readonly key?: string
}

/** A frame a producer socket sends: one message. `context` comes back in its reply. */
export interface ProducerFrame {
  readonly payload: string
  readonly properties?: Readonly<Record<string, string>>
  readonly context: string
  readonly key?: string
}

/** The reply to one ProducerFrame: `result` is `ok`, or `send-error:<code>` with `errorMsg`. */
export interface ProducerReply {
  readonly result: string
  readonly messageId?: string
  readonly context?: string
  readonly errorMsg?: string
  readonly errorCode?: number
}

/** What a consumer socket sends: an ack (no type), a negative ack, or permits in pull mode. */
export type ConsumerCommand =
  | { readonly messageId: string }
  | { readonly type: 'negativeAcknowledge'; readonly messageId: string }
  | { readonly type: 'permit'; readonly permitMessages: number }

/** One open WebSocket to the web service, as the adapter uses it. */
export interface PulsarSocket {
  /** True until the socket closed (either side). */
  readonly open: boolean
  /** Queue one frame as JSON text; rejects when the socket is closed or the write failed. */
  send(frame: object): Promise<void>
  /** Close it; `onClose` is still called. */
  close(): void
  /** Each text frame, parsed as JSON. */
  onMessage: ((frame: unknown) => void) | undefined
  /** Once, when the socket closed, with why. */
  onClose: ((reason: string) => void) | undefined
}

/** Opens a socket to `url`; rejects with the broker's reason when the handshake is refused. */
export type SocketOpener = (url: string) => Promise<PulsarSocket>

/** Options of the default opener, over the `ws` package. */
export interface WebSocketOptions {
  /** HTTP headers of the handshake, e.g. `{ Authorization: 'Bearer …' }`. */
  headers?: Readonly<Record<string, string>>
  /** How long the handshake may take. */
  handshakeTimeoutMs: number
}
