// Client options for a consumer: an MQTT 5 persistent session the broker keeps across
// disconnects, so that messages not yet acknowledged are sent again to the same client id.

import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'

export interface MqttSessionOptionsInput {
  /** Stable across restarts: the session, its subscriptions and unacknowledged messages belong to it. */
  clientId: string
  /** How long the broker keeps the session while the client is away. Default 1 day; at most about 136 years. */
  sessionExpiry?: Duration
  /** Seconds without traffic before client and broker declare the connection dead. Default 30. */
  keepalive?: number
  /** Wait between reconnection attempts (ms or a string such as '1s'); 0 never reconnects. Default 1 s. */
  reconnectPeriod?: Duration
  /**
   * How many unacknowledged QoS 1/2 messages the broker may send ahead (MQTT 5 Receive Maximum);
   * the broker applies the smaller of this and its own limit (Mosquitto: max_inflight_messages, 20).
   */
  receiveMaximum?: number
}

/** Options to spread into `mqtt.connect(url, …)`; the consumer connects the client itself (`manualConnect`). */
export interface MqttSessionOptions {
  protocolVersion: 5
  clean: false
  clientId: string
  keepalive: number
  reconnectPeriod: number
  manualConnect: true
  properties: { sessionExpiryInterval: number; receiveMaximum?: number }
}

const MAX_EXPIRY_S = 0xffff_fffe

/**
 * Options to spread into `mqtt.connect(url, …)` for a consumer's client: MQTT 5, a persistent
 * session under a stable client id, connected by `consumeMqtt` itself.
 *
 * @example
 * ```ts
 * const client = mqtt.connect('mqtt://localhost', mqttSessionOptions({ clientId: 'billing-1', sessionExpiry: '7d' }))
 * ```
 */
export function mqttSessionOptions(input: MqttSessionOptionsInput): MqttSessionOptions {
  if (typeof input.clientId !== 'string' || input.clientId.length === 0) {
    throw new TypeError('mqttSessionOptions needs a stable, non-empty clientId: a random one loses the session')
  }
  const expiryS = Math.ceil(toMs(input.sessionExpiry ?? '1d', 'sessionExpiry') / 1000)
  const properties: MqttSessionOptions['properties'] = { sessionExpiryInterval: Math.min(expiryS, MAX_EXPIRY_S) }
  if (input.receiveMaximum !== undefined)
    properties.receiveMaximum = positiveInteger(input.receiveMaximum, 'receiveMaximum')
  return {
    protocolVersion: 5,
    clean: false,
    clientId: input.clientId,
    keepalive: input.keepalive ?? 30,
    reconnectPeriod:
      input.reconnectPeriod === undefined
        ? 1000
        : input.reconnectPeriod === 0
          ? 0
          : toMs(input.reconnectPeriod, 'reconnectPeriod'),
    manualConnect: true,
    properties,
  }
}
