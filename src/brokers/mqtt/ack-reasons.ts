// The reason code of each PUBACK/PUBREC a publisher receives, by packet id. mqtt.js resolves a
// publish with the packet it sent, not the acknowledgement, and treats 16 ("no matching
// subscribers": the broker dropped the message) as success; this is how a publisher sees it.

import type { MqttAckPacket, MqttPublisherClient } from './mqtt-client.js'

/** PUBACK/PUBREC reason code 16: accepted, but no subscription matched, so no one will receive it. */
export const NO_MATCHING_SUBSCRIBERS = 16

// Enough for every publish awaiting its reason; packet ids repeat, so old entries are dropped.
const KEPT = 1024

export interface AckReasons {
  /** The reason code of the latest PUBACK/PUBREC for `messageId`, once (undefined if none was seen). */
  take(messageId: number | undefined): number | undefined
}

const trackers = new WeakMap<MqttPublisherClient, AckReasons>()

/** One tracker per client, however many producers share it. */
export function ackReasons(client: MqttPublisherClient): AckReasons {
  const existing = trackers.get(client)
  if (existing !== undefined) return existing
  const codes = new Map<number, number>()
  // Every code is recorded, 0 included: a later success must overwrite an older failure on a reused id.
  // The PUBACK is seen here before mqtt.js resolves the publish it answers, in the same tick.
  client.on('packetreceive', (packet: MqttAckPacket) => {
    if ((packet.cmd !== 'puback' && packet.cmd !== 'pubrec') || packet.messageId === undefined) return
    codes.delete(packet.messageId)
    codes.set(packet.messageId, packet.reasonCode ?? 0)
    if (codes.size > KEPT) codes.delete(codes.keys().next().value as number)
  })
  const tracker: AckReasons = {
    take(messageId) {
      if (messageId === undefined) return undefined
      const code = codes.get(messageId)
      codes.delete(messageId)
      return code
    },
  }
  trackers.set(client, tracker)
  return tracker
}

/** The packet id of what `publishAsync` resolved with (the PUBLISH for QoS 1, the PUBREL for QoS 2). */
export function sentMessageId(sent: unknown): number | undefined {
  const id = (sent as { messageId?: unknown } | undefined)?.messageId
  return typeof id === 'number' ? id : undefined
}
