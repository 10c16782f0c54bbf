// A TCP proxy the chaos run controls, between the workers and a store or broker: every worker
// connects to the proxy's port and the proxy pipes the bytes to the real server. The run can cut
// every connection at once, add latency to every chunk, or blackhole the link (accept and never
// answer), the network faults a client library meets in production.

import { connect, createServer, type Server, type Socket } from 'node:net'

export interface ProxyOptions {
  /** The proxy listens on 127.0.0.1:listenPort (0: any free port). */
  listenPort: number
  /** The real server. */
  targetPort: number
  targetHost?: string
}

interface Link {
  client: Socket
  server: Socket
}

export class ChaosProxy {
  readonly #options: ProxyOptions
  readonly #links = new Set<Link>()
  #server: Server | undefined
  #latencyMs = 0
  #blackhole = false
  /** Connections accepted during a blackhole: held open, never answered, cut when it ends. */
  readonly #held = new Set<Socket>()
  #port = 0
  #queued = 0
  #droppedBytes = 0

  constructor(options: ProxyOptions) {
    this.#options = options
  }

  get port(): number {
    return this.#port
  }

  /** Connections currently piped (not counting those a blackhole holds). */
  get connections(): number {
    return this.#links.size
  }

  /** Chunks held back by the latency, not yet forwarded. */
  get queued(): number {
    return this.#queued
  }

  /** Connections a blackhole accepted and holds unanswered. */
  get held(): number {
    return this.#held.size
  }

  /** Bytes a blackhole swallowed. */
  get droppedBytes(): number {
    return this.#droppedBytes
  }

  async start(): Promise<number> {
    const server = createServer((client) => this.#accept(client))
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#options.listenPort, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    this.#port = typeof address === 'object' && address !== null ? address.port : 0
    return this.#port
  }

  #accept(client: Socket): void {
    client.on('error', () => {})
    if (this.#blackhole) {
      // Accept, read and drop: the client sees a live connection that never says anything.
      this.#held.add(client)
      client.on('data', (chunk: Buffer) => {
        this.#droppedBytes += chunk.length
      })
      client.once('close', () => this.#held.delete(client))
      return
    }
    const server = connect({ port: this.#options.targetPort, host: this.#options.targetHost ?? '127.0.0.1' })
    server.on('error', () => {})
    server.setNoDelay(true)
    client.setNoDelay(true)
    const link: Link = { client, server }
    this.#links.add(link)
    this.#pipe(client, server)
    this.#pipe(server, client)
    const end = () => {
      this.#links.delete(link)
      client.destroy()
      server.destroy()
    }
    client.once('close', end)
    server.once('close', end)
  }

  /**
   * Forward `from` to `to`, each chunk after the latency in force when it arrived, dropping
   * everything while blackholed. One queue per direction keeps the chunks in order even when the
   * latency changes under them (a reordered byte stream would be a fault no network makes).
   */
  #pipe(from: Socket, to: Socket): void {
    const queue: { due: number; chunk: Buffer }[] = []
    let timer: NodeJS.Timeout | undefined
    const drain = () => {
      timer = undefined
      const now = Date.now()
      while (queue.length > 0 && (queue[0] as { due: number }).due <= now) {
        const { chunk } = queue.shift() as { chunk: Buffer }
        this.#queued--
        if (!to.destroyed) to.write(chunk)
      }
      if (queue.length > 0) timer = setTimeout(drain, (queue[0] as { due: number }).due - now)
    }
    from.on('data', (chunk: Buffer) => {
      if (this.#blackhole) {
        this.#droppedBytes += chunk.length
        return
      }
      if (this.#latencyMs === 0 && queue.length === 0) {
        if (!to.destroyed) to.write(chunk)
        return
      }
      const last = queue.at(-1)?.due ?? 0
      queue.push({ due: Math.max(Date.now() + this.#latencyMs, last), chunk })
      this.#queued++
      if (timer === undefined) timer = setTimeout(drain, Math.max(0, (queue[0] as { due: number }).due - Date.now()))
    })
    from.once('close', () => {
      if (timer !== undefined) clearTimeout(timer)
      this.#queued -= queue.length
      queue.length = 0
    })
  }

  /** Reset every open connection (both sides see it closed); new connections still go through. */
  cut(): number {
    const n = this.#links.size
    for (const link of [...this.#links]) {
      link.client.resetAndDestroy()
      link.server.destroy()
    }
    this.#links.clear()
    return n
  }

  /** Delay every chunk, both ways, by `ms` (0: none). */
  setLatency(ms: number): void {
    this.#latencyMs = ms
  }

  /**
   * Blackhole: new connections are accepted and never answered, and open ones stop carrying bytes
   * (what they send is dropped, as on a link that silently died). Ending it cuts every connection
   * that lost bytes, since their streams are no longer whole, and lets new ones through again.
   */
  setBlackhole(on: boolean): void {
    if (this.#blackhole === on) return
    this.#blackhole = on
    if (on) return
    this.cut()
    for (const socket of [...this.#held]) socket.resetAndDestroy()
    this.#held.clear()
  }

  async close(): Promise<void> {
    this.setBlackhole(false)
    this.cut()
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
