// The RabbitMQ example runs as written, and docs/brokers/amqp.md shows it as it is.

import { readFileSync } from 'node:fs'
import amqp from 'amqplib'
import { DEFAULT_DELAY_TIERS } from 'idem/amqp'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../test/services.js'
import { payOnce } from './amqp.js'

const URL_ = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'

if (await requireService('RabbitMQ', 5672)) {
  describe('examples/brokers/amqp.ts', () => {
    it('charges a payment published twice once', async () => {
      const queue = isolatedName('idem_example_payments')
      try {
        const { charged } = await payOnce(URL_, queue)
        expect(charged).toEqual(['order-1'])
      } finally {
        const connection = await amqp.connect(URL_)
        const channel = await connection.createChannel()
        const { messageCount } = await channel.checkQueue(queue)
        expect(messageCount).toBe(0) // both copies acknowledged
        for (const q of [queue, `${queue}.idem.dlq`]) await channel.deleteQueue(q)
        for (const ms of DEFAULT_DELAY_TIERS) await channel.deleteQueue(`${queue}.idem.delay.${ms}`)
        await channel.deleteExchange(`${queue}.idem.dlx`)
        await connection.close()
      }
    })
  })
}

it('docs/brokers/amqp.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/amqp.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/amqp\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./amqp.ts', import.meta.url), 'utf8'))
})
