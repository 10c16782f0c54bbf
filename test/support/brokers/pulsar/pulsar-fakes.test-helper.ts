// A PulsarSocket double and an opener handing them out: the tests drive what the broker would send
// (messages, producer replies, a closed socket) and read what the adapter sent.

import type { PulsarMessage, PulsarSocket, SocketOpener } from '../../../../src/brokers/pulsar/pulsar-driver.js'

export class FakeSocket implements PulsarSocket {
  open = true
  readonly sent: Record<string, unknown>[] = []
  onMessage: ((frame: unknown) => void) | undefined
  onClose: ((reason: string) => void) | undefined
  readonly url: string

  constructor(url: string) {
    this.url = url
  }

  send(frame: object): Promise<void> {
    if (!this.open) return Promise.reject(new Error('the socket is closed'))
    this.sent.push(frame as Record<string, unknown>)
    return Promise.resolve()
  }

  close(): void {
    this.drop('closed by the client')
  }

  /** The broker sends `frame`. */
  receive(frame: PulsarMessage | object): void {
    this.onMessage?.(frame)
  }

  /** The connection ends. */
  drop(reason = 'closed with code 1006'): void {
    if (!this.open) return
    this.open = false
    this.onClose?.(reason)
  }

  /** Permits granted on this socket, in total. */
  permits(): number {
    return this.sent.reduce((n, f) => n + (f.type === 'permit' ? Number(f.permitMessages) : 0), 0)
  }

  /** Message ids acknowledged (frames with only a messageId). */
  acks(): string[] {
    return this.sent
      .filter((f) => f.type === undefined && typeof f.messageId === 'string')
      .map((f) => String(f.messageId))
  }

  nacks(): string[] {
    return this.sent.filter((f) => f.type === 'negativeAcknowledge').map((f) => String(f.messageId))
  }
}

/** An opener that records every socket it opens; `refuse` makes the next opens fail. */
export function fakeOpener(): { open: SocketOpener; sockets: FakeSocket[]; refuse: Error | undefined } {
  const state = {
    sockets: [] as FakeSocket[],
    refuse: undefined as Error | undefined,
    open: async (url: string): Promise<PulsarSocket> => {
      if (state.refuse !== undefined) throw state.refuse
      const socket = new FakeSocket(url)
      state.sockets.push(socket)
      return socket
    },
  }
  return state
}

/** A message frame as the WebSocket API sends it. */
export function message(
  id: string,
  payload: unknown,
  properties: Record<string, string> = {},
  redeliveryCount = 0,
): PulsarMessage {
  return {
    messageId: id,
    payload: Buffer.from(JSON.stringify(payload)).toString('base64'),
    properties,
    redeliveryCount,
    publishTime: new Date().toISOString(),
  }
}
