import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { sqliteRig, type TransactionRig } from '../../test/support/transaction/transaction-rigs.test-helper.js'
import { IdempotentConsumer } from './consumer.js'

// Transaction mode on SQLite: the record and the handler's writes commit together, then the ack.
describe('the consumer core in transaction mode (SQLite)', () => {
  let rig: TransactionRig
  beforeAll(async () => {
    rig = await sqliteRig()
  })
  afterAll(async () => {
    await rig.cleanup()
  })

  function consumer(
    handler: (id: string, sql: Parameters<TransactionRig['addEffect']>[0]) => Promise<unknown> | unknown,
    extra: { maxAttempts?: number; isFinal?: (error: unknown) => boolean } = {},
  ) {
    return new IdempotentConsumer<{ id: string }, unknown>({
      idem: rig.idem(),
      db: rig.db,
      transactionHandler: (_tx, payload, ctx) => handler(payload.id, ctx.sql),
      backoff: () => 1,
      ...extra,
    })
  }

  it('commits the effect and the record together, acks, and acks duplicates without running', async () => {
    const broker = new FakeBroker<{ id: string }>()
    const c = consumer((id, sql) => rig.addEffect(sql, id))
    for (let i = 0; i < 3; i++) broker.publish('tx-1', { id: 'tx-1' })
    broker.publish('tx-2', { id: 'tx-2' }, 'elsewhere')
    await broker.consume(c)
    expect(await rig.effect('tx-1')).toBe(1)
    expect(await rig.effect('tx-2')).toBe(1)
    expect(broker.acked).toHaveLength(4)
  })

  it('rolls a failed handler’s writes back and retries it; dead-letters it at maxAttempts', async () => {
    const broker = new FakeBroker<{ id: string }>()
    let calls = 0
    const c = consumer(
      async (id, sql) => {
        calls++
        await rig.addEffect(sql, id)
        if (calls < 3 || id === 'tx-poison') throw new Error(`failed after writing ${id}`)
      },
      { maxAttempts: 3 },
    )
    broker.publish('tx-flaky', { id: 'tx-flaky' })
    await broker.consume(c)
    expect(await rig.effect('tx-flaky')).toBe(1)
    expect(broker.retried).toHaveLength(2)
    broker.publish('tx-poison', { id: 'tx-poison' })
    await broker.consume(c)
    expect(await rig.effect('tx-poison')).toBe(0)
    expect(broker.deadLettered).toEqual([
      { key: 'tx-poison', reason: 'Error: failed after writing tx-poison', deliveryCount: 3 },
    ])
  })

  it('dead-letters an isFinal error once and its duplicates without running', async () => {
    const broker = new FakeBroker<{ id: string }>()
    let calls = 0
    const c = consumer(
      () => {
        calls++
        throw Object.assign(new Error('declined'), { name: 'Declined' })
      },
      { isFinal: (error) => (error as Error).name === 'Declined' },
    )
    broker.publish('tx-final', { id: 'tx-final' })
    broker.publish('tx-final', { id: 'tx-final' })
    await broker.consume(c)
    expect(calls).toBe(1)
    expect(broker.deadLettered.map((d) => d.reason)).toEqual(['Declined: declined', 'Declined: declined'])
  })

  it('aborts a transaction handler at shutdown and hands its delivery back uncommitted', async () => {
    const broker = new FakeBroker<{ id: string }>()
    const c = new IdempotentConsumer<{ id: string }, unknown>({
      idem: rig.idem(),
      db: rig.db,
      shutdownTimeout: 30,
      transactionHandler: async (_tx, payload, ctx) => {
        await sleep(5000, undefined, { signal: ctx.signal })
        await rig.addEffect(ctx.sql, payload.id)
      },
    })
    broker.publish('tx-shutdown', { id: 'tx-shutdown' })
    const handled = c.handle(broker.take()[0] as never)
    await sleep(10)
    await c.close()
    expect(await handled).toMatchObject({ outcome: 'retried', delayMs: 0 })
    expect(broker.acked).toEqual([])
    await sleep(20)
    await broker.consume(consumer((id, sql) => rig.addEffect(sql, id)))
    expect(await rig.effect('tx-shutdown')).toBe(1)
  })
})
