// @IdempotentMessage() on Nest's RabbitMQ transport with `noAck: false`, the ack done by the
// decorator's `ack` option: a duplicate runs its handler once and is acked too (nothing stays
// unacknowledged on the queue); a handler that throws is neither acked nor nacked by Nest, so its
// delivery stays unacknowledged until the channel closes, and its redelivery runs again (an event)
// or is replayed (a request its requester already retried).

import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import {
  type ClientProxy,
  ClientProxyFactory,
  type MicroserviceOptions,
  type RmqContext,
  Transport,
} from '@nestjs/microservices'
import { lastValueFrom } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing, requireService } from '../../../test/services.js'
import {
  type Microservice,
  PaymentsState,
  paymentsController,
  startConsumer,
  waitFor,
} from '../../../test/support/http/nestjs-microservices.test-helper.js'
import { MemoryStore } from '../../index.js'

const run = randomUUID().slice(0, 8)
const QUEUE = `idem-test-nest-${run}`
const URL = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const exec = promisify(execFile)

/** The queue's ready and unacknowledged counts, read live from the broker by rabbitmqctl. */
async function queueCounts(): Promise<{ ready: number; unacked: number }> {
  const { stdout } = await exec(
    'rabbitmqctl',
    ['list_queues', '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged'],
    { timeout: 10_000 },
  )
  const row = stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[0] === QUEUE)
  if (row === undefined) throw new Error(`rabbitmqctl does not list the queue ${QUEUE}`)
  return { ready: Number(row[1]), unacked: Number(row[2]) }
}

async function expectQueue(expected: { ready: number; unacked: number }): Promise<void> {
  let last: { ready: number; unacked: number } | undefined
  await waitFor(async () => {
    last = await queueCounts()
    return last.ready === expected.ready && last.unacked === expected.unacked
  }, 5000)
  expect(last).toEqual(expected)
}

async function rabbitmqctl(): Promise<boolean> {
  try {
    await exec('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name'], { timeout: 10_000 })
    return true
  } catch (error) {
    const message = `the RabbitMQ suite reads its queue with rabbitmqctl, which failed: ${(error as Error).message}`
    reportMissing('RabbitMQ (rabbitmqctl)', message, 'can run rabbitmqctl list_queues')
    return false
  }
}

if ((await requireService('RabbitMQ', 5672)) && (await rabbitmqctl())) {
  describe('@IdempotentMessage() on the RabbitMQ transport (noAck: false, ack option)', () => {
    const CHARGE = `idem-test.${run}.charge`
    const CHARGED = `idem-test.${run}.charged`
    const state = new PaymentsState()
    /** Whether each execution's delivery carried RabbitMQ's redelivered flag, by id. */
    const redelivered: Array<[string, boolean]> = []
    const controller = paymentsController<RmqContext>(state, {
      charge: CHARGE,
      charged: CHARGED,
      ack: (context) => context.getChannelRef().ack(context.getMessage()),
      observe: (context, id) => redelivered.push([id, context.getMessage().fields.redelivered === true]),
    })
    const queueOptions = { durable: false, arguments: { 'x-expires': 120_000 } }
    const server: MicroserviceOptions = {
      transport: Transport.RMQ,
      options: { urls: [URL], queue: QUEUE, queueOptions, noAck: false, prefetchCount: 10 },
    }
    const store = new MemoryStore()
    let app: Microservice
    let client: ClientProxy

    /** Close the consumer (its channel closes: RabbitMQ requeues what it left unacked) and start another. */
    async function restart(): Promise<void> {
      await app.close()
      app = (await startConsumer(controller, state, store, server)).app
    }

    beforeAll(async () => {
      app = (await startConsumer(controller, state, store, server)).app
      client = ClientProxyFactory.create({
        transport: Transport.RMQ,
        options: { urls: [URL], queue: QUEUE, queueOptions },
      })
      await client.connect()
    })

    afterAll(async () => {
      await client?.close()
      await app?.close()
      await store.close()
      await exec('rabbitmqctl', ['delete_queue', QUEUE], { timeout: 10_000 }).catch(() => undefined)
    })

    it('runs a @MessagePattern once, replays its reply to the duplicate, and acks both deliveries', async () => {
      const id = randomUUID()
      const first = await lastValueFrom(client.send(CHARGE, { id, amount: 4200 }))
      const duplicate = await lastValueFrom(client.send(CHARGE, { id, amount: 4200 }))
      expect(first).toEqual({ chargeId: expect.stringMatching(/^ch_\d+$/), amount: 4200 })
      expect(duplicate).toEqual(first)
      expect(state.count('charges', id)).toBe(1)
      expect(state.contexts.at(-1)).toBe('RmqContext')
      expect(state.count('acked', id)).toBe(2)
      await expectQueue({ ready: 0, unacked: 0 })
    })

    it('runs an @EventPattern once for an event published twice, and acks the duplicate too', async () => {
      const id = randomUUID()
      await lastValueFrom(client.emit(CHARGED, { id }))
      await lastValueFrom(client.emit(CHARGED, { id }))
      expect(await waitFor(() => state.count('acked', id) === 2)).toBe(true)
      expect(state.count('events', id)).toBe(1)
      expect(state.count('executions', id)).toBe(1)
      await expectQueue({ ready: 0, unacked: 0 })
    })

    it('leaves a failed event unacked until the channel closes; its redelivery runs again and is acked', async () => {
      const id = randomUUID()
      await lastValueFrom(client.emit(CHARGED, { id, fail: true }))
      expect(await waitFor(() => state.failed.has(id))).toBe(true)
      // Nest neither acks nor nacks the delivery of a handler that threw: it holds a prefetch slot.
      await expectQueue({ ready: 0, unacked: 1 })
      await new Promise((resolve) => setTimeout(resolve, 300))
      await expectQueue({ ready: 0, unacked: 1 })
      expect(state.count('acked', id)).toBe(0)

      await restart()
      expect(await waitFor(() => state.count('acked', id) === 1)).toBe(true)
      expect(state.count('executions', id)).toBe(2)
      expect(state.count('events', id)).toBe(1)
      expect(redelivered.filter(([key]) => key === id)).toEqual([
        [id, false],
        [id, true],
      ])
      await expectQueue({ ready: 0, unacked: 0 })
    })

    it('runs a failed request again on the requester’s retry; the failed delivery, redelivered, is replayed and acked', async () => {
      const id = randomUUID()
      await expect(lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))).rejects.toBeDefined()
      const retry = await lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))
      expect(retry).toEqual({ chargeId: expect.any(String), amount: 1 })
      expect(state.count('executions', id)).toBe(2)
      expect(state.count('acked', id)).toBe(1)
      // The retry was acked; the delivery that failed was not.
      await expectQueue({ ready: 0, unacked: 1 })

      await restart()
      expect(await waitFor(() => state.count('acked', id) === 2)).toBe(true)
      // The redelivered original found the stored outcome: acked without a third execution.
      expect(state.count('executions', id)).toBe(2)
      expect(state.count('charges', id)).toBe(1)
      await expectQueue({ ready: 0, unacked: 0 })
      // The client is still connected through the restart: a new request is served by the new consumer.
      const after = await lastValueFrom(client.send(CHARGE, { id: randomUUID(), amount: 7 }))
      expect(after).toEqual({ chargeId: expect.any(String), amount: 7 })
    })
  })
}
