// idem/tracing across a broker hop, on the local RabbitMQ: a message published with
// traceHeaders() inside a producer's span is consumed by consumeAmqp, whose idem.run span
// continues the producer's trace, with idem.execute and the handler's own span beneath it.

import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import {
  AMQP_PORT,
  connect,
  declareQueue,
  deleteQueueAndTopology,
  until,
} from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import { expectChildOf, recordSpans, testTracer } from '../../../test/support/telemetry/tracing.test-helper.js'
import { consumeAmqp } from '../../brokers/amqp/amqp-consumer.js'
import { amqpProducer } from '../../brokers/amqp/amqp-producer.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemTracing, traceHeaders } from './index.js'

const spans = recordSpans()

if (await requireService('RabbitMQ', AMQP_PORT)) {
  describe('idemTracing across RabbitMQ (consumeAmqp, run mode)', () => {
    let connection: amqp.ChannelModel
    const queues: string[] = []

    beforeAll(async () => {
      connection = await connect('idem-tracing-test')
    })
    afterAll(async () => {
      for (const queue of queues) await deleteQueueAndTopology(connection, queue)
      await connection.close()
    })

    it("continues the producer's trace: idem.run under the producer span, idem.execute, then the handler's span", async () => {
      const channel = await connection.createChannel()
      const queue = await declareQueue(channel, isolatedName('idem_tracing'), 'quorum')
      await channel.close()
      queues.push(queue)

      const idem = new Idempotency({ store: new MemoryStore(), scope: 'orders' })
      const tracing = idemTracing()
      tracing.watch(idem)
      const settled: DeliveryResult[] = []
      const subscription = await consumeAmqp<{ order: number }>({
        client: connection,
        queue,
        idem,
        handler: (payload) =>
          testTracer().startActiveSpan('reserve-stock', (span) => {
            span.end()
            return payload.order
          }),
        on: { settled: (result) => settled.push(result) },
      })
      const producer = amqpProducer({ client: connection, routingKey: queue })
      const id = `${queue}:order-7`
      try {
        await testTracer().startActiveSpan('place-order', { kind: SpanKind.PRODUCER }, async (span) => {
          // The first publish and the producer's retry of it: the same id, the same trace context.
          await producer.publish({ id, payload: { order: 7 }, headers: traceHeaders({ tenant: 'acme' }) })
          await producer.publish({ id, payload: { order: 7 }, headers: traceHeaders({ tenant: 'acme' }) })
          span.end()
        })
        await until(() => settled.length === 2, 'both deliveries settled')
      } finally {
        await subscription.close()
        await producer.close()
        tracing.close()
      }
      expect(settled.map((result) => result.outcome)).toEqual(['executed', 'replayed'])

      const producerSpan = spans.one('place-order').spanContext()
      const [executed, replayed] = spans.named('idem.run')
      if (executed === undefined || replayed === undefined) throw new Error('expected two idem.run spans')
      for (const run of [executed, replayed]) {
        expectChildOf(run, producerSpan)
        expect(run.kind).toBe(SpanKind.CONSUMER)
        expect(run.parentSpanContext?.isRemote).toBe(true)
        expect(run.attributes).toMatchObject({ 'idem.scope': 'orders', 'idem.key': id })
        expect(run.status.code).toBe(SpanStatusCode.UNSET)
      }
      expect(executed.attributes['idem.outcome']).toBe('executed')
      expect(replayed.attributes['idem.outcome']).toBe('replayed')
      expect(replayed.events.map((event) => event.name)).toEqual(['idem.replay'])

      const execute = spans.one('idem.execute')
      expectChildOf(execute, executed.spanContext())
      expectChildOf(spans.one('reserve-stock'), execute.spanContext())
      expect(spans.childrenOf(executed)).toEqual(['idem.execute', 'idem.store.begin', 'idem.store.complete'])
      expect(spans.childrenOf(replayed)).toEqual(['idem.store.begin'])
    })
  })
}
