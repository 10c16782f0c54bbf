// @IdempotentMessage() on real @nestjs/microservices transports, Redis and MQTT (RabbitMQ, NATS and
// Kafka have files of their own: nestjs-microservices-{rmq,nats,kafka}.test.ts): a duplicate
// message, sent as a producer's retry, runs its handler once; a @MessagePattern duplicate gets the
// stored reply, a handler that throws releases its key, and an @EventPattern duplicate is dropped.

import { randomUUID } from 'node:crypto'
import { Controller, Inject, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import {
  type ClientProxy,
  ClientProxyFactory,
  Ctx,
  EventPattern,
  MessagePattern,
  type MicroserviceOptions,
  Payload,
  Transport,
} from '@nestjs/microservices'
import { lastValueFrom } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import { Idempotency, MemoryStore } from '../../index.js'
import { IdemModule, IdempotentMessage } from './index.js'

/** Patterns of this run only: the brokers are shared with other test files and processes. */
const run = randomUUID().slice(0, 8)
const CHARGE = `idem-test.${run}.charge`
const CHARGED = `idem-test.${run}.charged`

interface Charge {
  id: string
  amount: number
  fail?: boolean
}

class PaymentsState {
  charges: Charge[] = []
  events: string[] = []
  contexts: string[] = []
}

class PaymentsController {
  constructor(readonly state: PaymentsState) {}

  charge(data: Charge, context: object) {
    this.state.contexts.push(context.constructor.name)
    if (data.fail === true && !this.state.charges.some((c) => c.id === data.id && c.fail === true)) {
      this.state.charges.push(data)
      throw new Error('the card network timed out')
    }
    this.state.charges.push(data)
    return { chargeId: `ch_${this.state.charges.length}`, amount: data.amount }
  }

  charged(data: { id: string }) {
    this.state.events.push(data.id)
  }
}

function decorate(name: 'charge' | 'charged', ...decorators: MethodDecorator[]): void {
  const descriptor = Object.getOwnPropertyDescriptor(PaymentsController.prototype, name) as PropertyDescriptor
  for (const decorator of decorators.reverse()) decorator(PaymentsController.prototype, name, descriptor)
}
Controller()(PaymentsController)
Inject(PaymentsState)(PaymentsController, undefined, 0)
decorate('charge', MessagePattern(CHARGE) as MethodDecorator, IdempotentMessage<Charge>({ key: (data) => data.id }))
Payload()(PaymentsController.prototype, 'charge', 0)
Ctx()(PaymentsController.prototype, 'charge', 1)
/** What the `ack` option saw: the transport's manual ack goes there, for the first delivery and its duplicates. */
const acked: string[] = []
decorate(
  'charged',
  EventPattern(CHARGED) as MethodDecorator,
  IdempotentMessage<{ id: string }>({ key: (data) => data.id, ack: (_context, data) => acked.push(data.id) }),
)
Payload()(PaymentsController.prototype, 'charged', 0)

type Connection = MicroserviceOptions & { transport: Transport.REDIS | Transport.MQTT }
const TRANSPORTS: Array<{ name: string; port: number; options: Connection }> = [
  { name: 'Redis', port: 6379, options: { transport: Transport.REDIS, options: { host: '127.0.0.1', port: 6379 } } },
  { name: 'MQTT', port: 1883, options: { transport: Transport.MQTT, options: { url: 'mqtt://127.0.0.1:1883' } } },
]

for (const transport of TRANSPORTS) {
  if (!(await requireService(transport.name, transport.port))) continue

  describe(`@IdempotentMessage() on the ${transport.name} transport`, () => {
    const state = new PaymentsState()
    const store = new MemoryStore()
    let app: Awaited<ReturnType<typeof NestFactory.createMicroservice>>
    let client: ClientProxy
    let idem: Idempotency

    beforeAll(async () => {
      class PaymentsModule {}
      Module({
        imports: [IdemModule.forRoot({ store })],
        controllers: [PaymentsController],
        providers: [{ provide: PaymentsState, useValue: state }],
      })(PaymentsModule)
      app = await NestFactory.createMicroservice<MicroserviceOptions>(PaymentsModule, {
        ...transport.options,
        logger: false,
        abortOnError: false,
      })
      await app.listen()
      idem = app.get(Idempotency)
      client = ClientProxyFactory.create(
        transport.options as unknown as Parameters<typeof ClientProxyFactory.create>[0],
      )
      await client.connect()
    })

    afterAll(async () => {
      await client?.close()
      await app?.close()
      await store.close()
    })

    it('runs a @MessagePattern once per id and replays its reply to the duplicate', async () => {
      const id = randomUUID()
      const before = state.charges.length
      const first = await lastValueFrom(client.send(CHARGE, { id, amount: 4200 }))
      const duplicate = await lastValueFrom(client.send(CHARGE, { id, amount: 4200 }))
      expect(first).toEqual({ chargeId: expect.stringMatching(/^ch_\d+$/), amount: 4200 })
      expect(duplicate).toEqual(first)
      expect(state.charges.length).toBe(before + 1)
      expect(state.contexts.at(-1)).toBe(transport.name === 'Redis' ? 'RedisContext' : 'MqttContext')
    })

    it('releases the key when the handler throws, so that the next delivery runs again', async () => {
      const id = randomUUID()
      const before = state.charges.length
      await expect(lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))).rejects.toBeDefined()
      const retry = await lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))
      const replay = await lastValueFrom(client.send(CHARGE, { id, amount: 1, fail: true }))
      expect(retry).toEqual({ chargeId: expect.any(String), amount: 1 })
      expect(replay).toEqual(retry)
      expect(state.charges.length).toBe(before + 2)
    })

    it('runs an @EventPattern once for a duplicate event', async () => {
      const id = randomUUID()
      let replayed = 0
      const off = idem.on('replayed', (event) => {
        if (event.key === id) replayed++
      })
      try {
        await lastValueFrom(client.emit(CHARGED, { id }))
        await lastValueFrom(client.emit(CHARGED, { id }))
        for (let i = 0; i < 200 && replayed === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
        expect(replayed).toBe(1)
        expect(state.events.filter((e) => e === id)).toEqual([id])
        // Acked twice: the duplicate did not run the handler, but its delivery is settled too.
        expect(acked.filter((e) => e === id)).toEqual([id, id])
      } finally {
        off()
      }
    })
  })
}
