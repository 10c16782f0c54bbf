// kafkaProducer against a real broker: what lands on the topic (read back with kcat, a client
// nobody here wrote), the error when no broker answers, who closes the client, and the two ways
// @platformatic/kafka loses idempotent writes that the producer's send lane prevents: sends in
// flight together on one partition, and a send after one whose acknowledgement was lost (made on a
// broker of the test's own, frozen with SIGSTOP while the write is in its socket).

import { createServer } from 'node:net'
import { Producer, type ProducerOptions } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing, requireService, SERVICES } from '../../../test/services.js'
import {
  createTopic,
  PrivateKafka,
  producerClient,
  readWithKcat,
  toolsAvailable,
  unique,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import { listenerPid, whileFrozen } from '../../../test/support/brokers/kafka/kafka-freeze.test-helper.js'
import { until } from '../../../test/support/until.test-helper.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import { type KafkaProducer, kafkaProducer } from './kafka-producer.js'

/** A port nothing listens on: the connection is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Publish until the broker confirms (three tries), as a caller that got PublishNotConfirmedError would. */
async function publishConfirmed(producer: KafkaProducer, id: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await producer.publish({ id, payload: id })
    } catch (error) {
      if (!(error instanceof PublishNotConfirmedError) || attempt === 3) throw error
    }
  }
}

function clientFor(broker: string, options: Partial<ProducerOptions<Buffer, Buffer, Buffer, Buffer>> = {}): Producer {
  return new Producer({ clientId: 'idem-test-producer', bootstrapBrokers: [broker], ...options })
}

if (await requireService('Kafka', SERVICES.Kafka.port)) {
  describe('kafkaProducer', () => {
    let client: Producer
    beforeAll(() => {
      client = producerClient()
    })
    afterAll(async () => {
      await client.close()
    })

    it('writes the id header, your headers, the record key and the value', async () => {
      const topic = unique('idem-producer')
      await createTopic(topic, 3)
      const payments = kafkaProducer({
        client,
        topic,
        recordKey: (m) => (m.payload as { account: string }).account,
      })
      await payments.publish({ id: 'pay-1', payload: { account: 'a-1', cents: 100 }, headers: { 'trace-id': 't-1' } })
      await payments.publish({ id: 'pay-2', payload: { account: 'a-1', cents: 200 } })
      await payments.publish({ id: 'pay-3', payload: { account: 'b-7', cents: 300 } })

      const records = await readWithKcat(topic)
      const byId = new Map(records.map((r) => [r.headers['idem-message-id'], r]))
      expect(byId.get('pay-1')).toMatchObject({
        key: 'a-1',
        value: '{"account":"a-1","cents":100}',
        headers: { 'idem-message-id': 'pay-1', 'trace-id': 't-1' },
      })
      expect(byId.get('pay-2')).toMatchObject({ key: 'a-1', headers: { 'idem-message-id': 'pay-2' } })
      expect(byId.get('pay-3')).toMatchObject({ key: 'b-7', value: '{"account":"b-7","cents":300}' })
      // The key picks the partition: both payments of a-1 are on one, in order.
      expect(byId.get('pay-2')?.partition).toBe(byId.get('pay-1')?.partition)
      expect(byId.get('pay-2')?.offset).toBe((byId.get('pay-1')?.offset ?? -1) + 1)
      expect(records).toHaveLength(3)
    })

    it('sends a message with a destination to that topic instead of the default one', async () => {
      const fallback = unique('idem-producer-default')
      const other = unique('idem-producer-other')
      await Promise.all([createTopic(fallback), createTopic(other)])
      const producer = kafkaProducer({ client, topic: fallback })
      await producer.publish({ id: 'to-default', payload: 1 })
      await producer.publish({ id: 'to-other', payload: 2, destination: other })
      expect((await readWithKcat(fallback)).map((r) => r.headers['idem-message-id'])).toEqual(['to-default'])
      expect((await readWithKcat(other)).map((r) => r.headers['idem-message-id'])).toEqual(['to-other'])
    })

    it('publishMany writes every message, in order, and nothing for an empty list', async () => {
      const topic = unique('idem-producer-many')
      await createTopic(topic)
      const producer = kafkaProducer({ client, topic })
      await producer.publishMany([])
      await producer.publishMany(Array.from({ length: 25 }, (_, n) => ({ id: `many-${n}`, payload: { n } })))
      const records = await readWithKcat(topic)
      expect(records.map((r) => r.headers['idem-message-id'])).toEqual(
        Array.from({ length: 25 }, (_, n) => `many-${n}`),
      )
      expect(records.map((r) => JSON.parse(r.value).n)).toEqual(Array.from({ length: 25 }, (_, n) => n))
    })

    it('writes every one of many publishes in flight together on one partition', async () => {
      // The client on its own resolves all of them and writes one (see kafka-producer.ts).
      const topic = unique('idem-producer-concurrent')
      await createTopic(topic)
      const producer = kafkaProducer({ client, topic })
      const ids = Array.from({ length: 20 }, (_, n) => `together-${n}`)
      await Promise.all(ids.map((id, n) => producer.publish({ id, payload: { n } })))
      // A second kafkaProducer on the same client shares its lane.
      const second = kafkaProducer({ client, topic })
      await Promise.all([
        producer.publish({ id: 'first-of-two', payload: 0 }),
        second.publish({ id: 'second-of-two', payload: 0 }),
      ])
      const written = (await readWithKcat(topic)).map((r) => r.headers['idem-message-id'])
      expect(written).toEqual([...ids, 'first-of-two', 'second-of-two'])
    })

    it('rejects with PublishNotConfirmedError carrying the message id when no broker answers', async () => {
      // Not `idempotent: true` here: with it the client raises `retries` 0 to "without end" (next test).
      const unreachable = clientFor(`127.0.0.1:${await closedPort()}`, {
        retries: 0,
        connectTimeout: 500,
        timeout: 500,
      })
      try {
        const producer = kafkaProducer({ client: unreachable, topic: 'nowhere' })
        const error = await producer.publish({ id: 'lost-1', payload: 1 }).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(PublishNotConfirmedError)
        expect(error).toMatchObject({ code: 'PUBLISH_NOT_CONFIRMED', messageId: 'lost-1' })
        expect((error as Error).message).toMatch(/Kafka did not acknowledge the write/)
        expect((error as Error).cause).toBeInstanceOf(Error)
        // The next publish tries again (the failed one left the client needing a new producer id).
        await expect(producer.publish({ id: 'lost-2', payload: 2 })).rejects.toMatchObject({ messageId: 'lost-2' })
      } finally {
        await unreachable.close()
      }
    })

    it('gives up after confirmTimeout on a client that retries without end', async () => {
      const unreachable = clientFor(`127.0.0.1:${await closedPort()}`, {
        idempotent: true,
        retries: 0, // idempotent: the client makes this Number.MAX_SAFE_INTEGER
        retryDelay: 50,
        connectTimeout: 200,
      })
      try {
        const producer = kafkaProducer({ client: unreachable, topic: 'nowhere', confirmTimeout: '300ms' })
        const started = Date.now()
        const error = await producer.publish({ id: 'stuck-1', payload: 1 }).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(PublishNotConfirmedError)
        expect(error).toMatchObject({ messageId: 'stuck-1', message: expect.stringMatching(/within 300 ms/) })
        expect(Date.now() - started).toBeLessThan(5000)
      } finally {
        await unreachable.close(true)
      }
    })

    it('closes a client its factory made, never one passed as an instance', async () => {
      const topic = unique('idem-producer-owner')
      await createTopic(topic)
      let made: Producer | undefined
      const owned = kafkaProducer({
        client: () => {
          made = producerClient(SERVICES.Kafka.url, 'idem-test-factory')
          return made
        },
        topic,
      })
      expect(made).toBeUndefined()
      await owned.publish({ id: 'owned-1', payload: 1 })
      await owned.close()
      expect(made?.closed).toBe(true)
      await expect(owned.publish({ id: 'owned-2', payload: 2 })).rejects.toBeInstanceOf(PublishNotConfirmedError)

      const yours = kafkaProducer({ client, topic })
      await yours.publish({ id: 'yours-1', payload: 1 })
      await yours.close()
      expect(client.closed).toBe(false)
      expect((await readWithKcat(topic)).map((r) => r.headers['idem-message-id'])).toEqual(['owned-1', 'yours-1'])
    })

    it('refuses a missing client or topic, and a header that would replace the id', async () => {
      expect(() => kafkaProducer({ topic: 't' } as never)).toThrow(/kafkaProducer needs \{ client \}/)
      expect(() => kafkaProducer({ client } as never)).toThrow(/kafkaProducer needs \{ topic \}/)
      const producer = kafkaProducer({ client, topic: 't' })
      await expect(producer.publish({ id: 'h-1', payload: 1, headers: { 'idem-message-id': 'x' } })).rejects.toThrow(
        /would overwrite the message id/,
      )
      await expect(producer.publish({ id: '', payload: 1 })).rejects.toThrow(/1 to 255 characters/)
    })
  })
}

const missingTools = await toolsAvailable()
if (missingTools !== undefined) {
  reportMissing('kafkaProducer after a lost acknowledgement', missingTools, 'can start and freeze a broker of its own')
} else {
  describe('kafkaProducer after a lost acknowledgement', () => {
    const kafka = new PrivateKafka(19494)
    beforeAll(() => kafka.start(), 120_000)
    afterAll(() => kafka.destroy(), 60_000)

    it('writes the next message instead of letting the broker drop it as a duplicate of the lost one', async () => {
      const topic = unique('lost-ack')
      await createTopic(topic, 1, kafka.broker)
      // retries 2 keeps the client's retries finite; requestTimeout makes an unanswered request fail in 1 s.
      const client = clientFor(kafka.broker, {
        idempotent: true,
        retries: 2,
        retryDelay: 100,
        requestTimeout: 1000,
      } as Partial<ProducerOptions<Buffer, Buffer, Buffer, Buffer>>)
      try {
        const producer = kafkaProducer({ client, topic })
        await producer.publish({ id: 'm1', payload: 1 })
        // m2's request reaches the broker's socket; the broker, stopped, answers nothing, and the
        // client gives up. Continued, the broker writes m2: a write whose acknowledgement was lost.
        await whileFrozen(await listenerPid(kafka.port), async () => {
          await expect(producer.publish({ id: 'm2', payload: 2 })).rejects.toMatchObject({ messageId: 'm2' })
        })
        const written = async () =>
          (await readWithKcat(topic, kafka.broker)).map((r) => r.headers['idem-message-id'] as string)
        await until(
          () => 'the thawed broker to write m2',
          // kcat may find the broker still waking up: try again.
          async () => (await written().catch((): string[] => [])).includes('m2'),
        )
        // The client numbers m3 as it numbered m2; without a new producer id the broker takes m3 for
        // m2 sent again, answers with m2's offset and writes nothing.
        // (A broker just thawed may still be slow to answer: publishing again, as a caller would, is
        // fine, a second copy has the same id; what must not happen is m3 missing.)
        await publishConfirmed(producer, 'm3')
        await publishConfirmed(producer, 'm4')
        expect([...new Set(await written())]).toEqual(['m1', 'm2', 'm3', 'm4'])
      } finally {
        await client.close(true)
      }
    }, 60_000)
  })
}
