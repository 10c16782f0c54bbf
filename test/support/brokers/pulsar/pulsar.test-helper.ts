// Fixtures for the Pulsar tests on the local standalone (test/services/pulsar.sh): topic names
// unique to the test file, raw WebSocket producers and readers that bypass the adapter (to publish
// what pulsarProducer never would, and to read a dead-letter topic back), the admin API's stats,
// and polling.

import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import type { ProducerReply, PulsarMessage } from '../../../../src/brokers/pulsar/pulsar-driver.js'
import { isolatedName, SERVICES } from '../../../services.js'

/** The web service (admin REST and WebSocket API) of test/services/pulsar.sh. */
export const PULSAR_WEB_PORT = SERVICES.Pulsar.port
export const PULSAR_URL = SERVICES.Pulsar.url
const ADMIN = `${PULSAR_URL.replace(/^ws/, 'http')}/admin/v2/persistent`

/** A persistent topic in public/default under a name unique to this process. */
export function uniqueTopic(prefix: string): string {
  return `persistent://public/default/${isolatedName(prefix)}`
}

function path(topic: string): string {
  return topic.replace(/^persistent:\/\//, '')
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.once('open', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Publish raw frames (payloads as bytes) straight through the WebSocket API; resolves with the replies. */
export async function publishRaw(
  topic: string,
  messages: { payload: Uint8Array | string; properties?: Record<string, string>; key?: string }[],
): Promise<ProducerReply[]> {
  const socket = await openSocket(`${PULSAR_URL}/ws/v2/producer/persistent/${path(topic)}`)
  try {
    const replies: ProducerReply[] = []
    const all = new Promise<void>((resolve) => {
      socket.on('message', (data) => {
        replies.push(JSON.parse(String(data)) as ProducerReply)
        if (replies.length === messages.length) resolve()
      })
    })
    for (const [i, m] of messages.entries()) {
      socket.send(
        JSON.stringify({
          payload: Buffer.from(m.payload).toString('base64'),
          properties: m.properties ?? {},
          context: String(i),
          ...(m.key === undefined ? {} : { key: m.key }),
        }),
      )
    }
    await all
    for (const reply of replies) if (reply.result !== 'ok') throw new Error(`publish failed: ${JSON.stringify(reply)}`)
    return replies
  } finally {
    socket.close()
  }
}

/**
 * Read `count` messages of `topic` from the start under a new subscription (acking them), or fail
 * after `timeoutMs`; then wait `settleMs` more and fail if any further message came.
 */
export async function readTopic(
  topic: string,
  count: number,
  timeoutMs = 10_000,
  settleMs = 300,
): Promise<PulsarMessage[]> {
  const subscription = isolatedName('reader')
  const socket = await openSocket(
    `${PULSAR_URL}/ws/v2/consumer/persistent/${path(topic)}/${subscription}?subscriptionType=Shared&subscriptionInitialPosition=Earliest`,
  )
  const messages: PulsarMessage[] = []
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as PulsarMessage
    messages.push(message)
    socket.send(JSON.stringify({ messageId: message.messageId }))
  })
  try {
    await waitFor(`${count} messages on ${topic} (got ${messages.length})`, () => messages.length >= count, timeoutMs)
    await sleep(settleMs)
    if (messages.length !== count) throw new Error(`expected ${count} messages on ${topic}, got ${messages.length}`)
    return messages
  } finally {
    socket.close()
  }
}

export interface SubscriptionStats {
  msgBacklog: number
  unackedMessages: number
  consumers: number
}

/** The subscription's stats from the admin API (undefined when it does not exist). */
export async function subscriptionStats(topic: string, subscription: string): Promise<SubscriptionStats | undefined> {
  const response = await fetch(`${ADMIN}/${path(topic)}/stats`)
  if (!response.ok) return undefined
  const stats = (await response.json()) as {
    subscriptions?: Record<string, { msgBacklog: number; unackedMessages: number; consumers: unknown[] }>
  }
  const sub = stats.subscriptions?.[subscription]
  return sub === undefined
    ? undefined
    : { msgBacklog: sub.msgBacklog, unackedMessages: sub.unackedMessages, consumers: sub.consumers.length }
}

/** Wait until every message of the subscription is acknowledged. */
export async function waitForDrained(topic: string, subscription: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `subscription ${subscription} drained`,
    async () => {
      const stats = await subscriptionStats(topic, subscription)
      return stats !== undefined && stats.msgBacklog === 0 && stats.unackedMessages === 0
    },
    timeoutMs,
  )
}

/** Delete topics (and their subscriptions), ignoring those already gone. */
export async function deleteTopics(topics: string[]): Promise<void> {
  for (const topic of topics) {
    await fetch(`${ADMIN}/${path(topic)}?force=true`, { method: 'DELETE' }).catch(() => {})
  }
}

/** Poll `probe` until it returns true, or fail after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/**
 * Another consumer on `subscription` (push mode, never acking): what the broker still has to give
 * while the adapter holds its share. close() hands its messages back.
 */
export async function holdMessages(
  topic: string,
  subscription: string,
): Promise<{ received(): number; close(): void }> {
  const socket = await openSocket(
    `${PULSAR_URL}/ws/v2/consumer/persistent/${path(topic)}/${subscription}?subscriptionType=Shared&receiverQueueSize=100`,
  )
  let received = 0
  socket.on('message', () => {
    received++
  })
  return { received: () => received, close: () => socket.close() }
}
