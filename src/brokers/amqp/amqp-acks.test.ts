import { describe, expect, it } from 'vitest'
import { StaleDeliveryError } from '../../consumer/stale-delivery.js'
import { AckWindow, type Tracked, Wire } from './amqp-acks.js'
import type { AmqpChannel, AmqpMessage } from './amqp-driver.js'

/** A channel that records what would go on the wire: `ack:<tag>` or `ack*:<tag>` (multiple). */
function recordingChannel() {
  const sent: string[] = []
  const channel = {
    ack(message: AmqpMessage, allUpTo?: boolean) {
      sent.push(`${allUpTo === true ? 'ack*' : 'ack'}:${message.fields.deliveryTag}`)
    },
    reject(message: AmqpMessage) {
      sent.push(`reject:${message.fields.deliveryTag}`)
    },
  } as unknown as AmqpChannel
  return { channel, sent }
}

/** `n` more deliveries on the window's channel, tagged after the ones it tracks already. */
const tagged = new WeakMap<AckWindow, number>()
function deliveries(window: AckWindow, n: number): Tracked[] {
  return Array.from({ length: n }, () => {
    const tag = (tagged.get(window) ?? 0) + 1
    tagged.set(window, tag)
    const tracked: Tracked = {
      key: `k${tag}`,
      raw: { fields: { deliveryTag: tag } } as unknown as AmqpMessage,
      wire: Wire.OPEN,
    }
    window.track(tracked)
    return tracked
  })
}

describe('AckWindow', () => {
  it('sends the acks of one turn as one multiple ack when every earlier delivery is settled', async () => {
    const { channel, sent } = recordingChannel()
    const window = new AckWindow(channel, () => true)
    const [d1, d2, d3] = deliveries(window, 3) as [Tracked, Tracked, Tracked]
    await Promise.all([window.ack(d2), window.ack(d1), window.ack(d3)])
    expect(sent).toEqual(['ack*:3'])
  })

  it('never reaches past a delivery still at work: the acks behind it go one by one', async () => {
    const { channel, sent } = recordingChannel()
    const window = new AckWindow(channel, () => true)
    const [d1, d2, d3, d4] = deliveries(window, 4) as [Tracked, Tracked, Tracked, Tracked]
    await Promise.all([window.ack(d1), window.ack(d3), window.ack(d4)])
    expect(sent).toEqual(['ack*:1', 'ack:3', 'ack:4'])
    // d2 was rejected (sent by its delivery): the next ack may reach past it again.
    d2.wire = Wire.SENT
    const [d5] = deliveries(window, 1) as [Tracked]
    await window.ack(d5)
    expect(sent.at(-1)).toBe('ack*:5')
  })

  it('covers a rejected delivery with a multiple ack only once the reject was sent', async () => {
    const { channel, sent } = recordingChannel()
    const window = new AckWindow(channel, () => true)
    const [d1, d2] = deliveries(window, 2) as [Tracked, Tracked]
    d1.wire = Wire.SENT
    await window.ack(d2)
    expect(sent).toEqual(['ack*:2'])
  })

  it('sends nothing once the channel closed, and fails the acks of that turn as stale', async () => {
    const { channel, sent } = recordingChannel()
    let open = true
    const window = new AckWindow(channel, () => open)
    const [d1] = deliveries(window, 1) as [Tracked]
    const acked = window.ack(d1)
    open = false
    await expect(acked).rejects.toBeInstanceOf(StaleDeliveryError)
    expect(sent).toEqual([])
  })

  it('forgets deliveries settled by rejects alone, and still acks the next one right', async () => {
    const { channel, sent } = recordingChannel()
    const window = new AckWindow(channel, () => true)
    // Every one rejected, none acked: no flush ever walks past them, so tracking them must drop them.
    for (const rejected of deliveries(window, 3000)) rejected.wire = Wire.SENT
    const [last] = deliveries(window, 1) as [Tracked]
    expect(window.tracked).toBeLessThan(2000)
    await window.ack(last)
    expect(sent).toEqual(['ack*:3001'])
    expect(window.tracked).toBeLessThan(2000)
  })
})
