// mqttProducer: publishes each message at QoS 1 (or 2) with its stable id in a user property, and
// resolves only on the broker's PUBACK (or PUBCOMP). A retry after a lost confirmation reuses the
// id, so the consumer recognises the duplicate.

import { warnDeprecated } from '../../contract/deprecation.js'
import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { MqttPublisherClient } from './mqtt-client.js'
import { MqttPublishError, publishConfirmed } from './publish-confirmed.js'

/** The user property that carries the message id, read by `consumeMqtt` as the idempotency key. */
export const DEFAULT_KEY_PROPERTY = 'idem-key'

export interface MqttProducerOptions {
  /**
   * A connected mqtt.js client (MQTT 5), yours: the producer never ends it. A function returning
   * one hands it to the producer, which calls it on first publish and ends it in close().
   */
  client: ClientOption<MqttPublisherClient>
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

/** `publish` resolves on PUBACK/PUBCOMP, or rejects with an `MqttPublishError` (publish again with the same id). */
export interface MqttProducer extends Producer {
  /** Ends the client only if a factory made it. */
  close(): Promise<void>
}

/** An mqtt.js client that can be ended (what a factory returns). */
interface Endable {
  endAsync?(force?: boolean): Promise<void>
}

/**
 * A producer that publishes at QoS 1 (or 2) with the message id in a user property and resolves
 * on the broker's confirmation.
 *
 * @example
 * const client = await mqtt.connectAsync('mqtt://localhost', { protocolVersion: 5 })
 * const producer = mqttProducer({ client, topic: 'orders/created' })
 * await producer.publish({ id: 'order-42', payload: { total: 42 } })
 */
export function mqttProducer(options: MqttProducerOptions): MqttProducer
/** @deprecated Pass one options object: `mqttProducer({ client, ...options })`. */
export function mqttProducer(client: MqttPublisherClient, options?: Omit<MqttProducerOptions, 'client'>): MqttProducer
export function mqttProducer(
  first: MqttProducerOptions | MqttPublisherClient,
  second: Omit<MqttProducerOptions, 'client'> = {},
): MqttProducer {
  let options: MqttProducerOptions
  if (typeof (first as Partial<MqttPublisherClient> | undefined)?.publishAsync === 'function') {
    warnDeprecated('mqttProducer(client, options)', 'mqttProducer({ client, ...options })')
    options = { ...second, client: first as MqttPublisherClient }
  } else {
    options = first as MqttProducerOptions
  }
  const source = new ProducerClient(options?.client, 'mqttProducer', 'a connected mqtt.js client')
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
      const properties = contentType === undefined ? { userProperties } : { userProperties, contentType }
      try {
        await publishConfirmed(await source.get(), topic, encode(message.payload), { qos, properties }, confirm)
      } catch (error) {
        if (!(error instanceof MqttPublishError) || error.messageId !== undefined) throw error
        throw new MqttPublishError(error.message, error.reasonCode, { cause: error.cause, messageId: id })
      }
    },
    close: () => source.close((client) => (client as Endable).endAsync?.()),
  }
}
