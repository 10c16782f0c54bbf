// The payment publisher: every payment through kafkaProducer with its messageId as the id (in the
// idem-message-id header) and its customer as the record key (a customer's payments stay in order
// on one partition), paced over a few seconds while the consumers run. Injected lost
// acknowledgements: the broker wrote the record but the answer never reaches the producer, whose
// caller publishes the same payment again, with the same id: a second record.
//
// Sends go one at a time, a tick's payments in one request: @platformatic/kafka 1.35's idempotent
// Producer numbers a send from a partition's sequence and advances it only when the broker answers,
// so two sends in flight to one partition carry the same number (the broker drops one as a
// duplicate, or answers OUT_OF_ORDER_SEQUENCE_NUMBER and every later send fails).

import type { Producer } from '@platformatic/kafka'
import { type KafkaProducerClient, type KafkaRecordToSend, kafkaProducer, MESSAGE_ID_HEADER } from 'idem/kafka'
import type { PaymentMessage } from '../incident/payments.js'
import type { Prng } from '../incident/prng.js'

export interface PublishStats {
  /** Acknowledgements dropped on the way to the producer: each made it publish the payment again. */
  lostAcks: number
  /** Publishes that failed for real and were repeated with the same id. */
  retries: number
  /** Records the broker acknowledged (or wrote and whose acknowledgement was lost): one per payment, one more per repeat. */
  records: number
  publishMs: number
}

export async function publishPayments(
  client: Producer,
  topic: string,
  messages: readonly PaymentMessage[],
  rng: Prng,
  options: { lostAckRate: number; durationMs: number; onProgress?: (published: number) => void },
): Promise<PublishStats> {
  const losing = new Set(messages.filter(() => rng.chance(options.lostAckRate)).map((m) => m.messageId))
  const stats: PublishStats = { lostAcks: 0, retries: 0, records: 0, publishMs: 0 }
  // The first acknowledgement of each chosen payment is lost after the broker wrote the record.
  const lossy: KafkaProducerClient = {
    send: async (request) => {
      const lose = request.messages.map(idOf).some((id) => losing.delete(id))
      const written = await client.send(request as Parameters<Producer['send']>[0])
      stats.records += request.messages.length
      if (lose) {
        stats.lostAcks++
        throw new Error('the acknowledgement was lost on the way back (injected)')
      }
      return written
    },
    close: () => Promise.resolve(),
  }
  const producer = kafkaProducer({ client: lossy, topic, recordKey: (m) => (m.payload as PaymentMessage).customerId })
  const toMessage = (m: PaymentMessage) => ({ id: m.messageId, payload: m })

  /** Publish until acknowledged, always with the same id: what a careful producer does. */
  const publishOne = async (m: PaymentMessage) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await producer.publish(toMessage(m))
      } catch (error) {
        if (attempt >= 10) throw error
        if (!(error as Error).message.includes('injected')) stats.retries++
      }
    }
  }

  const started = performance.now()
  let sent = 0
  while (sent < messages.length) {
    const due = Math.min(
      messages.length,
      Math.max(sent + 1, Math.floor(((performance.now() - started) / options.durationMs) * messages.length)),
    )
    const slice = messages.slice(sent, due)
    const plain = slice.filter((m) => !losing.has(m.messageId))
    if (plain.length > 0) {
      try {
        await producer.publishMany(plain.map(toMessage))
      } catch {
        stats.retries++
        for (const m of plain) await publishOne(m)
      }
    }
    for (const m of slice) if (losing.has(m.messageId)) await publishOne(m)
    sent = due
    options.onProgress?.(sent)
    if (sent < messages.length) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  stats.publishMs = performance.now() - started
  await producer.close()
  return stats
}

function idOf(record: KafkaRecordToSend): string {
  for (const [name, value] of record.headers ?? [])
    if (name.toString('utf8') === MESSAGE_ID_HEADER) return value.toString('utf8')
  return ''
}
