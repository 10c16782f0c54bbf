// @IdempotentMessage() on Nest's NATS transport (core NATS through @nats-io/transport-node): at
// most once, no ack and no redelivery, so what it dedupes is a producer's retry. A request's
// duplicate gets the stored reply, a handler that throws is released and the requester's retry runs
// it again, an event published twice runs once; and two instances subscribed without a queue group
// (both receive every event) run it once between them over a shared store, and when it throws on
// one, the other runs it.

import { randomUUID } from 'node:crypto'
import {
  type ClientProxy,
  ClientProxyFactory,
  type MicroserviceOptions,
  type NatsContext,
  Transport,
} from '@nestjs/microservices'
import { lastValueFrom } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  type Microservice,
  PaymentsState,
  paymentsController,
  startConsumer,
  waitFor,
} from '../../../test/support/http/nestjs-microservices.test-helper.js'
import { type Idempotency, MemoryStore } from '../../index.js'

const run = randomUUID().slice(0, 8)
const SERVERS = process.env.IDEM_NATS_URL ?? 'nats://127.0.0.1:4222'

if (await requireService('NATS', 4222)) {
  describe('@IdempotentMessage() on the NATS transport', () => {
    const CHARGE = `idem-test.${run}.charge`
    const CHARGED = `idem-test.${run}.charged`
    const state = new PaymentsState()
    const controller = paymentsController<NatsContext>(state, { charge: CHARGE, charged: CHARGED })
    const transport: MicroserviceOptions = { transport: Transport.NATS, options: { servers: SERVERS } }
    const store = new MemoryStore()
    const apps: Microservice[] = []
    const idems: Idempotency[] = []
    let client: ClientProxy

    beforeAll(async () => {
      // Two instances, no queue group: NATS delivers every event to both.
      for (let i = 0; i < 2; i++) {
        const started = await startConsumer(controller, state, store, transport)
        apps.push(started.app)
        idems.push(started.idem)
      }
      client = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: SERVERS } })
      await client.connect()
    })

    afterAll(async () => {
      await client?.close()
      for (const app of apps) await app.close()
      await store.close()
    })

    it('runs a @MessagePattern once per id and replays its reply to the duplicate', async () => {
      const id = randomUUID()
      const first = await lastValueFrom(client.send(CHARGE, { id, amount: 4200 }))
      const duplicate = await lastValueFrom(client.send(CHARGE, { id, amount: 4200 }))
      expect(first).toEqual({ chargeId: expect.stringMatching(/^ch_\d+$/), amount: 4200 })
      expect(duplicate).toEqual(first)
      expect(state.count('charges', id)).toBe(1)
      expect(state.contexts.at(-1)).toBe('NatsContext')
    })

    it('releases the key when the handler throws, so that the requester’s retry runs again', async () => {
      const id = randomUUID()
      await expect(lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))).rejects.toBeDefined()
      const retry = await lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))
      const replay = await lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))
      expect(retry).toEqual({ chargeId: expect.any(String), amount: 1 })
      expect(replay).toEqual(retry)
      expect(state.count('executions', id)).toBe(2)
      expect(state.count('charges', id)).toBe(1)
    })

    it('runs an @EventPattern once for an event published twice, delivered to both instances', async () => {
      const id = randomUUID()
      let replayed = 0
      // Each instance has its own Idempotency (and events) over the one store.
      const offs = idems.map((idem) =>
        idem.on('replayed', (event) => {
          if (event.key === id) replayed++
        }),
      )
      try {
        await lastValueFrom(client.emit(CHARGED, { id }))
        await lastValueFrom(client.emit(CHARGED, { id }))
        // Two publications, each received by two instances: four deliveries, one execution.
        expect(await waitFor(() => state.count('acked', id) === 4)).toBe(true)
        expect(state.count('executions', id)).toBe(1)
        expect(state.count('events', id)).toBe(1)
        expect(replayed).toBe(3)
      } finally {
        for (const off of offs) off()
      }
    })

    it('runs a failed event again on the other instance that received it, never a third time', async () => {
      const id = randomUUID()
      await lastValueFrom(client.emit(CHARGED, { id, fail: true }))
      // Whichever instance runs first throws and releases the key; the other (waiting for it, or
      // arriving after) runs it again. NATS itself redelivers nothing: there is no third attempt.
      expect(await waitFor(() => state.count('events', id) === 1)).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(state.count('executions', id)).toBe(2)
      expect(state.count('events', id)).toBe(1)
      expect(state.count('acked', id)).toBe(1)
    })
  })
}
