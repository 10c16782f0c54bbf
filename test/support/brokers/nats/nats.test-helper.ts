// Fixtures for the JetStream tests on the shared local NATS server: a stream, its dead-letter
// stream and a durable consumer under names unique to the test file (deleted afterwards), a TCP
// proxy whose connections the test can cut, and polling helpers.

import { createServer, type Socket, connect as tcpConnect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  AckPolicy,
  type ConnectionOptions,
  connect,
  type JetStreamManager,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  StorageType,
} from 'nats'
import { isolatedName } from '../../../services.js'

export const NATS_PORT = 4222

export function connectNats(options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  return connect({ servers: `127.0.0.1:${NATS_PORT}`, ...options })
}

export interface Topology {
  stream: string
  /** The subject messages are published to (captured by `stream`). */
  subject: string
  durable: string
  deadLetterStream: string
  deadLetterSubject: string
  jsm: JetStreamManager
  /** Consumer info: what is still pending, unacknowledged, redelivered. */
  consumerInfo(): Promise<{ num_pending: number; num_ack_pending: number; num_redelivered: number }>
  /** The dead-letter stream's messages, oldest first. */
  deadLetters(): Promise<{ data: string; headers: MsgHdrs | undefined }[]>
  /** Messages stored in the main stream. */
  storedMessages(): Promise<number>
  remove(): Promise<void>
}

/** A memory stream, a dead-letter stream and a durable pull consumer with explicit acks and max_deliver -1. */
export async function createTopology(
  nc: NatsConnection,
  prefix: string,
  options: { ackWaitMs?: number; duplicateWindowMs?: number } = {},
): Promise<Topology> {
  const stream = isolatedName(prefix)
  const t = {
    stream,
    subject: `${stream}.in`,
    durable: 'worker',
    deadLetterStream: `${stream}_dlq`,
    deadLetterSubject: `${stream}.dead`,
  }
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({
    name: t.stream,
    subjects: [t.subject],
    storage: StorageType.Memory,
    ...(options.duplicateWindowMs === undefined ? {} : { duplicate_window: nanos(options.duplicateWindowMs) }),
  })
  await jsm.streams.add({ name: t.deadLetterStream, subjects: [t.deadLetterSubject], storage: StorageType.Memory })
  await jsm.consumers.add(t.stream, {
    durable_name: t.durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(options.ackWaitMs ?? 30_000),
    max_deliver: -1,
  })
  return {
    ...t,
    jsm,
    consumerInfo: () => jsm.consumers.info(t.stream, t.durable),
    async deadLetters() {
      const info = await jsm.streams.info(t.deadLetterStream)
      const out = []
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(t.deadLetterStream, { seq })
        out.push({ data: new TextDecoder().decode(m.data), headers: m.header })
      }
      return out
    },
    storedMessages: async () => (await jsm.streams.info(t.stream)).state.messages,
    async remove() {
      await jsm.streams.delete(t.stream).catch(() => {})
      await jsm.streams.delete(t.deadLetterStream).catch(() => {})
    },
  }
}

/** Poll `probe` until it returns true, or fail after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** A TCP proxy to the NATS server whose client connections `drop()` cuts, as a network failure would. */
export async function startProxy(): Promise<{ port: number; drop(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = tcpConnect(NATS_PORT, '127.0.0.1')
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a)
      a.pipe(b)
      a.on('error', () => b.destroy())
      a.on('close', () => {
        sockets.delete(a)
        b.destroy()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  return {
    port: address.port,
    drop() {
      const n = sockets.size
      for (const s of sockets) s.destroy()
      return n / 2
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
