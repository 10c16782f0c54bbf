// @IdempotentMessage() on Nest's Kafka transport (kafkajs), an @EventPattern in a consumer group.
// Nest 12.1.1 awaits an event handler's stream inside kafkajs's `eachMessage`, so an offset is
// resolved only once the outcome is stored (or replayed), and kafkajs's auto-commit (no interval
// nor threshold set: at the end of each batch, and before an error is rethrown) commits it. A
// handler that throws is rethrown to kafkajs, which fetches the same offset again: the handler runs
// again and the partition waits behind it. An event published twice runs once, and a group whose
// offsets are lost (a redelivery of everything) runs nothing again.

import { randomUUID } from 'node:crypto'
import { type ClientKafkaProxy, ClientProxyFactory, type MicroserviceOptions, Transport } from '@nestjs/microservices'
import kafkajs from 'kafkajs'
import { lastValueFrom } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  type Microservice,
  PaymentsState,
  paymentsController,
  startConsumer,
  waitFor,
} from '../../../test/support/http/nestjs-microservices.test-helper.js'
import { MemoryStore } from '../../index.js'

const { Kafka, logLevel } = kafkajs
const run = randomUUID().slice(0, 8)
const BROKER = SERVICES.Kafka.url
const PORT = Number(BROKER.split(':').at(-1))
const TOPIC = `idem-test-nest-${run}`
const GROUP = `idem-test-nest-${run}`
/** Nest appends `-server` to the group id of its Kafka server. */
const SERVER_GROUP = `${GROUP}-server`

if (await requireService('Kafka', PORT)) {
  describe('@IdempotentMessage() on the Kafka transport (an @EventPattern in a consumer group)', () => {
    const state = new PaymentsState()
    const controller = paymentsController(state, { charged: TOPIC })
    const retry = { initialRetryTime: 100, retries: 5 }
    const server: MicroserviceOptions = {
      transport: Transport.KAFKA,
      options: {
        client: { clientId: `idem-test-${run}`, brokers: [BROKER], retry, logLevel: logLevel.NOTHING },
        consumer: {
          groupId: GROUP,
          // Short sessions and rebalances: joining and leaving the group is most of this file's time.
          sessionTimeout: 6000,
          heartbeatInterval: 500,
          rebalanceTimeout: 5000,
          maxWaitTimeInMs: 100,
          retry,
        },
        subscribe: { fromBeginning: true },
      },
    }
    const admin = new Kafka({
      clientId: `idem-test-admin-${run}`,
      brokers: [BROKER],
      logLevel: logLevel.NOTHING,
    }).admin()
    const store = new MemoryStore()
    let app: Microservice
    let client: ClientKafkaProxy

    /** The group's committed offset and the partition's end, for the topic's only partition. */
    async function offsets(): Promise<{ committed: number; end: number }> {
      const [group] = await admin.fetchOffsets({ groupId: SERVER_GROUP, topics: [TOPIC] })
      const [partition] = await admin.fetchTopicOffsets(TOPIC)
      return { committed: Number(group?.partitions[0]?.offset ?? -1), end: Number(partition?.high ?? -2) }
    }

    async function expectAllCommitted(): Promise<void> {
      let last: { committed: number; end: number } | undefined
      await waitFor(async () => {
        last = await offsets()
        return last.committed === last.end
      }, 5000)
      expect(last?.committed).toBe(last?.end)
    }

    beforeAll(async () => {
      await admin.connect()
      await admin.createTopics({
        topics: [{ topic: TOPIC, numPartitions: 1, replicationFactor: 1 }],
        waitForLeaders: true,
      })
      app = (await startConsumer(controller, state, store, server)).app
      client = ClientProxyFactory.create({
        transport: Transport.KAFKA,
        options: {
          client: { clientId: `idem-test-producer-${run}`, brokers: [BROKER], logLevel: logLevel.NOTHING },
          producerOnlyMode: true,
        },
      })
      await client.connect()
    })

    afterAll(async () => {
      await client?.close()
      await app?.close()
      await store.close()
      await admin.deleteGroups([SERVER_GROUP]).catch(() => undefined)
      await admin.deleteTopics({ topics: [TOPIC] }).catch(() => undefined)
      await admin.disconnect()
    })

    it('runs an @EventPattern once for an event published twice, and commits both offsets', async () => {
      const id = randomUUID()
      await lastValueFrom(client.emit(TOPIC, { id }))
      await lastValueFrom(client.emit(TOPIC, { id }))
      expect(await waitFor(() => state.count('acked', id) === 2, 10_000)).toBe(true)
      expect(state.count('executions', id)).toBe(1)
      expect(state.count('events', id)).toBe(1)
      expect(state.contexts.at(-1)).toBe('KafkaContext')
      await expectAllCommitted()
    })

    it('runs a failed event again when kafkajs refetches its offset; the next event waits behind it', async () => {
      const failing = randomUUID()
      const next = randomUUID()
      await lastValueFrom(client.emit(TOPIC, { id: failing, fail: true }))
      await lastValueFrom(client.emit(TOPIC, { id: next }))
      expect(await waitFor(() => state.count('events', next) === 1, 10_000)).toBe(true)
      expect(state.count('executions', failing)).toBe(2)
      expect(state.count('events', failing)).toBe(1)
      expect(state.count('acked', failing)).toBe(1)
      // Ordered within the partition: the event after the failure ran only after its retry.
      expect(state.events.slice(-2)).toEqual([failing, next])
      await expectAllCommitted()
    })

    it('settles an event whose handler throws a final error: stored, acked, its offset committed, the next event not held', async () => {
      const declined = randomUUID()
      const next = randomUUID()
      await lastValueFrom(client.emit(TOPIC, { id: declined, declined: true }))
      await lastValueFrom(client.emit(TOPIC, { id: next }))
      expect(await waitFor(() => state.count('events', next) === 1, 10_000)).toBe(true)
      // Run once: the stored error is the outcome, not a failure for kafkajs to fetch again.
      expect(state.count('executions', declined)).toBe(1)
      expect(state.count('acked', declined)).toBe(1)
      await expectAllCommitted()
    })

    it('runs nothing again when the group reads the topic once more from the start (its offsets lost)', async () => {
      const executions = state.executions.length
      const acked = state.acked.length
      const { end } = await offsets()
      await app.close()
      // The group is empty once its only member has left: it can be deleted, its offsets with it
      // (as when offsets.retention.minutes lapses), and `fromBeginning` restarts it at the first record.
      expect(
        await waitFor(async () => {
          try {
            await admin.deleteGroups([SERVER_GROUP])
            return true
          } catch {
            return false
          }
        }, 10_000),
      ).toBe(true)
      app = (await startConsumer(controller, state, store, server)).app
      // Every record of the topic delivered again: each one replayed (acked), none executed.
      expect(await waitFor(() => state.acked.length === acked + end, 15_000)).toBe(true)
      expect(state.executions.length).toBe(executions)
      await expectAllCommitted()
    })
  })
}
