// Held acknowledgements. mqtt.js sends the PUBACK (QoS 1) or PUBREC (QoS 2) of a PUBLISH only when
// its `customHandleAcks` callback is called; the consumer calls it once Idem has settled the message.
// Two facts shape this module:
// - mqtt.js handles incoming packets one at a time and waits for that callback, so while a PUBLISH
//   is held nothing else is read from the connection, PINGRESP included: the gate keeps the
//   connection alive itself (PINGREQ, and a reset of mqtt.js's own keepalive timer).
// - Packet ids are per connection and reused. After a reconnect the broker sends every
//   unacknowledged message again (dup=1, same packet id); an old callback called then would ack
//   that resent copy, and a second ack of the same id could ack a new message the broker put on
//   that id meanwhile. So a PUBLISH held on a connection that closed is never acknowledged.

import type { MqttAckCallback, MqttConsumerClient, MqttPublishPacket } from './mqtt-client.js'

export class HeldPublish {
  private settled = false

  constructor(
    private readonly gate: AckGate,
    readonly packet: MqttPublishPacket,
    private readonly done: MqttAckCallback | undefined,
    private readonly connection: number,
  ) {}

  /** Still held on the connection it arrived on (QoS 0 has nothing to hold: live until settled). */
  get live(): boolean {
    return !this.settled && (this.done === undefined || this.connection === this.gate.connection)
  }

  /** Send the PUBACK/PUBREC. False when the connection it arrived on is gone: the broker sends it again. */
  release(): boolean {
    if (!this.live) return false
    this.settled = true
    this.gate.forget(this)
    this.done?.(0)
    return true
  }
}

export class AckGate {
  /** Counts connections: a held PUBLISH belongs to the one it arrived on. */
  connection = 0
  private readonly held = new Set<HeldPublish>()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly client: MqttConsumerClient) {}

  hold(packet: MqttPublishPacket, done: MqttAckCallback | undefined): HeldPublish {
    const held = new HeldPublish(this, packet, done, this.connection)
    if (done !== undefined) {
      this.held.add(held)
      this.keepAlive()
    }
    return held
  }

  /** The connection closed: everything held on it is void (the broker keeps those messages unacknowledged). */
  connectionClosed(): void {
    this.connection++
    this.held.clear()
    this.stopKeepAlive()
  }

  forget(held: HeldPublish): void {
    this.held.delete(held)
    if (this.held.size === 0) this.stopKeepAlive()
  }

  stop(): void {
    this.held.clear()
    this.stopKeepAlive()
  }

  private keepAlive(): void {
    const keepaliveS = this.client.options.keepalive ?? 60
    if (this.timer !== undefined || keepaliveS <= 0) return
    // mqtt.js may be one tick from declaring a timeout while its last PINGRESP waits unread.
    if (this.client.connected) this.client.reschedulePing(true)
    // A third of the keepalive: before mqtt.js's first check (half of it) and the broker's limit
    // (one and a half). The PINGRESP waits unread behind the held PUBLISH; resetting mqtt.js's timer
    // stops it from taking that for a dead connection. A connection that really breaks still closes.
    this.timer = setInterval(
      () => {
        if (!this.client.connected) return
        this.client.sendPing()
        this.client.reschedulePing(true)
      },
      Math.max(100, Math.floor((keepaliveS * 1000) / 3)),
    )
    this.timer.unref()
  }

  private stopKeepAlive(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
