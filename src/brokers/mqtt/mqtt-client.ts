// The subset of an mqtt.js v5 `MqttClient` that idem/mqtt uses, typed by the part used so that
// importing the adapter never loads `mqtt` (an optional peer dependency).

export type MqttQoS = 0 | 1 | 2

/** MQTT 5 user properties as mqtt.js presents them: a name given twice arrives as an array. */
export type MqttUserProperties = Record<string, string | string[]>

export interface MqttPublishProperties {
  userProperties?: MqttUserProperties
  contentType?: string
  payloadFormatIndicator?: boolean
  correlationData?: Buffer
  responseTopic?: string
  messageExpiryInterval?: number
}

/** An incoming PUBLISH packet. `messageId` is the 16-bit packet identifier: reused, never a key. */
export interface MqttPublishPacket {
  readonly topic: string
  readonly payload: Buffer | string
  readonly qos: MqttQoS
  /** Set by the broker when it sends the message again (after a reconnect, for an unacknowledged QoS 1/2). */
  readonly dup: boolean
  readonly retain: boolean
  readonly messageId?: number
  readonly properties?: MqttPublishProperties
}

/** mqtt.js's `customHandleAcks` callback: a reason code (0 = success) sends the PUBACK/PUBREC. */
export type MqttAckCallback = (error: Error | number, code?: number) => void
// biome-ignore lint/suspicious/noExplicitAny: mqtt.js declares the packet argument as any
export type MqttAckHandler = (topic: string, message: Buffer, packet: any, done: MqttAckCallback) => void

export interface MqttPublishOptions {
  qos?: MqttQoS
  retain?: boolean
  properties?: MqttPublishProperties
}

/** The fields of an acknowledgement packet (PUBACK, PUBREC, …) the publisher reads. */
export interface MqttAckPacket {
  readonly cmd: string
  readonly messageId?: number
  readonly reasonCode?: number
}

/**
 * What a producer or a dead-letter publisher needs: `publishAsync` resolves on PUBACK (QoS 1) or
 * PUBCOMP (QoS 2) with the packet it sent; `packetreceive` shows the acknowledgement's reason code.
 */
export interface MqttPublisherClient {
  publishAsync(topic: string, message: string | Buffer, opts?: MqttPublishOptions): Promise<unknown>
  on(event: 'packetreceive', listener: (packet: MqttAckPacket) => void): unknown
}

export interface MqttSubscribeOptions {
  qos: MqttQoS
  nl?: boolean
  rap?: boolean
  rh?: number
}

/** What the consumer needs of its (dedicated) client. */
export interface MqttConsumerClient {
  readonly options: {
    protocolVersion?: number
    clean?: boolean
    clientId?: string
    keepalive?: number
    properties?: { sessionExpiryInterval?: number }
    customHandleAcks?: MqttAckHandler
  }
  readonly connected: boolean
  /** Undefined until `connect()` ran: how the consumer knows no session message was acknowledged before it. */
  readonly stream?: unknown
  connect(): unknown
  subscribeAsync(
    topics: string[],
    opts: MqttSubscribeOptions,
  ): Promise<ReadonlyArray<{ topic: string; qos: number }> | undefined>
  endAsync(force?: boolean): Promise<void>
  /** Public mqtt.js keepalive controls, used to keep the connection up while a PUBLISH is held. */
  sendPing(): void
  reschedulePing(force?: boolean): void
  on(event: 'connect', listener: (packet: { sessionPresent: boolean }) => void): unknown
  on(event: 'close', listener: () => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'message', listener: (topic: string, payload: Buffer, packet: MqttPublishPacket) => void): unknown
  removeListener(event: 'connect', listener: (packet: { sessionPresent: boolean }) => void): unknown
  removeListener(event: 'close', listener: () => void): unknown
  removeListener(event: 'error', listener: (error: Error) => void): unknown
  removeListener(
    event: 'message',
    listener: (topic: string, payload: Buffer, packet: MqttPublishPacket) => void,
  ): unknown
}
