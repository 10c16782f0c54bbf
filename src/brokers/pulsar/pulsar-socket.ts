// The default PulsarSocket, over the `ws` package (loaded when the first socket opens, so that
// importing idem/pulsar does not need it). A refused handshake becomes an error carrying the
// broker's own reason: the WebSocket API answers a bad topic, subscription or query parameter
// with an HTTP error whose message says what was wrong.

import type { IncomingMessage } from 'node:http'
import type { PulsarSocket, SocketOpener, WebSocketOptions } from './pulsar-driver.js'

/** The handshake was refused or failed: `status` is the HTTP status when the broker answered. */
export class PulsarConnectError extends Error {
  readonly status: number | undefined

  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PulsarConnectError'
    this.status = status
  }
}

const PING_EVERY_MS = 30_000

type WsModule = typeof import('ws')
let wsModule: Promise<WsModule> | undefined

function loadWs(): Promise<WsModule> {
  wsModule ??= import('ws').catch((error: unknown) => {
    wsModule = undefined
    throw new TypeError("idem/pulsar needs the 'ws' package (npm install ws)", { cause: error })
  })
  return wsModule
}

/** A SocketOpener over `ws`. */
export function webSocketOpener(options: WebSocketOptions): SocketOpener {
  return async (url) => {
    const { WebSocket } = await loadWs()
    const socket = new WebSocket(url, {
      handshakeTimeout: options.handshakeTimeoutMs,
      ...(options.headers === undefined ? {} : { headers: { ...options.headers } }),
    })
    await new Promise<void>((resolve, reject) => {
      const refused = (_request: unknown, response: IncomingMessage) => {
        const status = response.statusCode
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk
        })
        response.on('end', () => {
          socket.terminate()
          reject(new PulsarConnectError(`${where(url)}: ${refusal(status, response.statusMessage, body)}`, status))
        })
        response.on('error', () => {})
      }
      socket.once('open', () => {
        socket.off('unexpected-response', refused)
        resolve()
      })
      socket.once('unexpected-response', refused)
      socket.once('error', (error: Error) =>
        reject(new PulsarConnectError(`${where(url)}: ${error.message}`, undefined, { cause: error })),
      )
    })
    const wrapped: PulsarSocket = {
      get open() {
        return socket.readyState === WebSocket.OPEN
      },
      send(frame) {
        if (socket.readyState !== WebSocket.OPEN)
          return Promise.reject(new Error(`${where(url)}: the socket is closed`))
        return new Promise((resolve, reject) => {
          socket.send(JSON.stringify(frame), (error) => (error ? reject(error) : resolve()))
        })
      },
      close() {
        socket.close()
      },
      onMessage: undefined,
      onClose: undefined,
    }
    socket.on('message', (data, isBinary) => {
      if (isBinary) return
      let frame: unknown
      try {
        frame = JSON.parse(data.toString())
      } catch {
        return
      }
      wrapped.onMessage?.(frame)
    })
    // An 'error' without a listener would throw; 'close' always follows it.
    socket.on('error', () => {})
    // The broker closes a WebSocket session idle for webSocketSessionIdleTimeoutMillis (5 minutes by
    // default): a consumer waiting for messages, a producer between bursts. A ping is traffic.
    const keepAlive = setInterval(() => socket.ping(), PING_EVERY_MS)
    keepAlive.unref()
    socket.once('close', (code, reason) => {
      clearInterval(keepAlive)
      wrapped.onClose?.(`closed with code ${code}${reason.length > 0 ? `: ${reason.toString()}` : ''}`)
    })
    return wrapped
  }
}

/** The endpoint without its query, for messages. */
function where(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** The broker's reason for refusing a handshake: Jetty puts it in the status line and the page's title. */
function refusal(status: number | undefined, statusMessage: string | undefined, body: string): string {
  const title = /<title>([^<]*)<\/title>/i.exec(body)?.[1]
  const text = (title ?? statusMessage ?? '')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .trim()
  return `HTTP ${status ?? '?'}${text.length > 0 ? ` (${text})` : ''}`
}
