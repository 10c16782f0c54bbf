// mqttProducer: publishes each message at QoS 1 (or 2) with its stable id in a user property, and
// resolves only on the broker's PUBACK (or PUBCOMP). A retry after a lost confirmation reuses the
// id, so the consumer recognises the duplicate.

import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { MqttPublisherClient } from './mqtt-client.js'
import { publishConfirmed } from './publish-confirmed.js'

/** The user property that carries the message id, read by `consumeMqtt` as the idempotency key. */
export const DEFAULT_KEY_PROPERTY = 'idem-key'

export interface MqttProducerOptions {
  /** Topic for messages without a `destination`. */
  topic?: string
  /** 1 (PUBACK) or 2 (PUBREC/PUBREL/PUBCOMP). Default 1: the consumer deduplicates anyway. */
  qos?: 1 | 2
  /** User property carrying the id. Default `idem-key`. */
  keyProperty?: string
  /** Payload encoding. Default JSON (with content type `application/json`). */
  encode?: (payload: unknown) => string | Buffer
  /** Content type sent with each message. Default `application/json` with the default encoding, none otherwise. */
  contentType?: string
  /**
   * Reject when the broker reports that no subscription matched (PUBACK reason 16): it dropped the
   * message. Default false (publishing to a topic nobody listens to is allowed in MQTT). Mosquitto
   * reports it for QoS 1 only.
   */
  requireSubscriber?: boolean
  /** How long to wait for the confirmation. Default 30 s. */
  confirmTimeout?: Duration
}

export function mqttProducer(client: MqttPublisherClient, options: MqttProducerOptions = {}): Producer {
  const qos = options.qos ?? 1
  if (qos !== 1 && qos !== 2) throw new RangeError(`mqttProducer publishes at QoS 1 or 2, got ${String(qos)}`)
  const keyProperty = options.keyProperty ?? DEFAULT_KEY_PROPERTY
  const encode = options.encode ?? ((payload: unknown) => JSON.stringify(payload) ?? 'null')
  const contentType = options.contentType ?? (options.encode === undefined ? 'application/json' : undefined)
  const confirm = {
    requireSubscriber: options.requireSubscriber ?? false,
    timeoutMs: options.confirmTimeout === undefined ? 30_000 : toMs(options.confirmTimeout, 'confirmTimeout'),
  }

  return {
    async publish(message: OutgoingMessage): Promise<void> {
      const id = validateKey(message.id)
      const topic = message.destination ?? options.topic
      if (topic === undefined) throw new TypeError('mqttProducer: the message has no destination and no default topic')
      // The id goes last so a header cannot replace it.
      const userProperties = { ...message.headers, [keyProperty]: id }
      await publishConfirmed(
        client,
        topic,
        encode(message.payload),
        { qos, properties: contentType === undefined ? { userProperties } : { userProperties, contentType } },
        confirm,
      )
    },
  }
}
