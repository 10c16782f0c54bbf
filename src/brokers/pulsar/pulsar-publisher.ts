// One producer socket to one topic, sending frames and matching each reply to its frame by
// `context`. The socket opens on the first send and again on the first send after it closed; a
// send whose reply does not come (the socket closed, the timeout passed) fails, and so does one
// the broker answers with anything but `ok`. Used by pulsarProducer and for dead-letter copies.

import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { ProducerFrame, ProducerReply, PulsarSocket, SocketOpener } from './pulsar-driver.js'

interface Pending {
  resolve(reply: ProducerReply): void
  reject(error: Error): void
  timer: NodeJS.Timeout
}

export interface Confirmed {
  /** The broker's message id of the stored message (base64). */
  readonly messageId: string
}

export class Publisher {
  readonly #url: string
  readonly #open: SocketOpener
  readonly #timeoutMs: number
  readonly #pending = new Map<string, Pending>()
  #socket: Promise<PulsarSocket> | undefined
  #next = 0
  #closed = false

  /** `url` is the producer endpoint; `timeoutMs` how long a reply may take. */
  constructor(url: string, open: SocketOpener, timeoutMs: number) {
    this.#url = url
    this.#open = open
    this.#timeoutMs = timeoutMs
  }

  /**
   * Send one message and resolve once the broker stored it. Rejects with a PublishNotConfirmedError
   * (`messageId` is `id`) when it did not say so: sending again under the same id is then safe.
   */
  async send(frame: Omit<ProducerFrame, 'context'>, id: string): Promise<Confirmed> {
    if (this.#closed) throw new PublishNotConfirmedError('the Pulsar producer is closed', { messageId: id })
    let socket: PulsarSocket
    try {
      socket = await this.#connect()
    } catch (error) {
      throw new PublishNotConfirmedError(`could not open the Pulsar producer: ${describe(error)}`, {
        messageId: id,
        cause: error,
      })
    }
    const context = String(++this.#next)
    const reply = new Promise<ProducerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(context)
        reject(
          new PublishNotConfirmedError(`Pulsar did not confirm "${id}" within ${this.#timeoutMs} ms`, {
            messageId: id,
          }),
        )
      }, this.#timeoutMs)
      this.#pending.set(context, {
        resolve,
        reject: (error) =>
          reject(
            new PublishNotConfirmedError(`Pulsar did not confirm "${id}": ${error.message}`, {
              messageId: id,
              cause: error,
            }),
          ),
        timer,
      })
    })
    socket.send({ ...frame, context }).catch((error: unknown) => this.#settle(context, error))
    const answer = await reply
    if (answer.result !== 'ok' || typeof answer.messageId !== 'string') {
      throw new PublishNotConfirmedError(
        `Pulsar refused "${id}": ${answer.result}${answer.errorMsg ? ` (${answer.errorMsg})` : ''}`,
        { messageId: id },
      )
    }
    return { messageId: answer.messageId }
  }

  /** Close the socket; sends still waiting for a reply fail. */
  async close(): Promise<void> {
    this.#closed = true
    const socket = this.#socket
    this.#socket = undefined
    if (socket !== undefined) (await socket.catch(() => undefined))?.close()
    for (const context of [...this.#pending.keys()]) this.#settle(context, new Error('the producer closed'))
  }

  #connect(): Promise<PulsarSocket> {
    if (this.#socket === undefined) {
      const opening = this.#open(this.#url).then((socket) => {
        socket.onMessage = (frame) => this.#reply(frame)
        socket.onClose = (reason) => {
          if (this.#socket === opening) this.#socket = undefined
          for (const context of [...this.#pending.keys()]) this.#settle(context, new Error(`the socket ${reason}`))
        }
        if (this.#closed) socket.close()
        return socket
      })
      // A failed open is not kept: the next send tries again.
      opening.catch(() => {
        if (this.#socket === opening) this.#socket = undefined
      })
      this.#socket = opening
    }
    return this.#socket
  }

  #reply(frame: unknown): void {
    const reply = frame as Partial<ProducerReply> | null
    if (reply === null || typeof reply !== 'object' || typeof reply.context !== 'string') return
    const pending = this.#pending.get(reply.context)
    if (pending === undefined) return
    this.#pending.delete(reply.context)
    clearTimeout(pending.timer)
    pending.resolve({ result: String(reply.result), ...reply } as ProducerReply)
  }

  #settle(context: string, error: unknown): void {
    const pending = this.#pending.get(context)
    if (pending === undefined) return
    this.#pending.delete(context)
    clearTimeout(pending.timer)
    pending.reject(error instanceof Error ? error : new Error(String(error)))
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
