// The transactional producer and its checker on each real database, with a stand-in for the
// broker: the database alone decides a half message's fate, and a checker and a local transaction
// racing past the deadline can never both win.

import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { FakeTransactionalClient } from '../../../test/support/brokers/rocketmq/fake-transactions.test-helper.js'
import {
  mysqlRig,
  postgresRig,
  sqliteRig,
  type TransactionRig,
} from '../../../test/support/transaction/transaction-rigs.test-helper.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { PostgresStore } from '../../stores/postgres/postgres-store.js'
import { TransactionResolution } from './rocketmq-producer-driver.js'
import { TransactionDeadlineError, transactionalProducer, transactionChecker } from './rocketmq-transactions.js'

const DATABASES = [
  { name: 'PostgreSQL', port: SERVICES.PostgreSQL.port as number | null, make: postgresRig },
  { name: 'MariaDB', port: SERVICES.MariaDB.port as number | null, make: mysqlRig },
  { name: 'SQLite', port: null, make: sqliteRig },
] as const

for (const database of DATABASES) {
  if (database.port !== null && !(await requireService(database.name, database.port))) continue

  describe(`RocketMQ transactions on ${database.name}`, () => {
    let rig: TransactionRig<unknown>
    let table: string
    beforeAll(async () => {
      rig = (await database.make()) as TransactionRig<unknown>
      table =
        rig.dialect === 'postgres'
          ? `${(rig.store as PostgresStore).names.schema}.rocketmq_tx`
          : `rocketmq_tx_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
      const producer = transactionalProducer({ client: new FakeTransactionalClient(), db: rig.db, table })
      await producer.ensureSchema()
    })
    afterAll(async () => {
      if (rig?.dialect === 'mysql')
        await rig.db.transaction((_tx, sql) => sql.execute(`DROP TABLE IF EXISTS ${table}`, []))
      await rig?.cleanup()
    })

    const setup = (timeout: number | string = '30s') => {
      const client = new FakeTransactionalClient()
      const errors: unknown[] = []
      const producer = transactionalProducer({
        client,
        db: rig.db,
        table,
        topic: 'payments',
        timeout,
        onError: (e) => errors.push(e),
      })
      const checker = transactionChecker({ db: rig.db, table, onError: (e) => errors.push(e) })
      return { client, producer, checker, errors }
    }

    it('commits the message after the local transaction, and a check-back says COMMIT', async () => {
      const { client, producer, checker } = setup()
      const sent = await producer.send({ id: 'pay-1', payload: { amount: 10 } }, async (_tx, sql) => {
        await rig.addEffect(sql, 'pay-1')
        return 'charged'
      })
      expect(sent).toMatchObject({ id: 'pay-1', messageId: 'M1', result: 'charged' })
      const half = client.half(0)
      expect(half.ended).toBe('commit')
      expect(half.outgoing.properties?.get('idem-key')).toBe('pay-1')
      expect(half.outgoing.keys).toEqual(['pay-1'])
      expect(JSON.parse(half.outgoing.body.toString())).toEqual({ amount: 10 })
      expect(await rig.effect('pay-1')).toBe(1)
      expect(await checker.check(client.checked(half))).toBe(TransactionResolution.COMMIT)
    })

    it('rolls the message back when the work throws, and the error reaches the caller', async () => {
      const { client, producer, checker } = setup()
      await expect(
        producer.send({ id: 'pay-2', payload: {} }, async (_tx, sql) => {
          await rig.addEffect(sql, 'pay-2')
          throw new Error('card declined')
        }),
      ).rejects.toThrow('card declined')
      const half = client.half(0)
      expect(half.ended).toBe('rollback')
      expect(await rig.effect('pay-2')).toBe(0)
      // No record and still within the timeout: the broker is told nothing yet.
      expect(await checker.check(client.checked(half))).toBe(TransactionResolution.UNKNOWN)
    })

    it('answers UNKNOWN before the deadline and ROLLBACK after it when no local transaction committed', async () => {
      const { client, producer, checker } = setup(300)
      client.failEnds = true
      await expect(
        producer.send({ id: 'pay-3', payload: {} }, async () => Promise.reject(new Error('crash'))),
      ).rejects.toThrow('crash')
      const half = client.half(0)
      expect(await checker.check(client.checked(half))).toBe(TransactionResolution.UNKNOWN)
      await sleep(350)
      expect(await checker.check(client.checked(half))).toBe(TransactionResolution.ROLLBACK)
      // Decided: asked again, the answer stays.
      expect(await checker.check(client.checked(half))).toBe(TransactionResolution.ROLLBACK)
    })

    it('a commit the broker never heard of is still committed by the check-back', async () => {
      const { client, producer, checker, errors } = setup(200)
      client.failEnds = true
      const sent = await producer.send({ id: 'pay-4', payload: {} }, (_tx, sql) => rig.addEffect(sql, 'pay-4'))
      expect(sent.id).toBe('pay-4')
      expect(String(errors[0])).toMatch(/a check-back will commit it/)
      await sleep(250)
      expect(await checker.check(client.checked(client.half(0)))).toBe(TransactionResolution.COMMIT)
      expect(await rig.effect('pay-4')).toBe(1)
    })

    it('a check-back past the deadline waits for a local transaction holding the record, then says COMMIT', async () => {
      const { client, producer, checker } = setup(150)
      let release!: () => void
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let inside!: () => void
      const entered = new Promise<void>((resolve) => {
        inside = resolve
      })
      const sending = producer.send({ id: 'pay-7', payload: {} }, async (_tx, sql) => {
        await rig.addEffect(sql, 'pay-7')
        inside()
        await held
        return 'slow'
      })
      await entered
      await sleep(200)
      // SQLite: one connection in this process, the checker's transaction queues behind the send's.
      const checking = checker.check(client.checked(client.half(0)))
      await sleep(100)
      release()
      expect((await sending).result).toBe('slow')
      expect(await checking).toBe(TransactionResolution.COMMIT)
      expect(await rig.effect('pay-7')).toBe(1)
    })

    it('refuses to commit locally once a check-back rolled the send back', async () => {
      const { client, producer, checker } = setup(100)
      let release!: () => void
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      // The half message is stored, then the producer stalls before its local transaction.
      const realTransaction = rig.db.transaction.bind(rig.db)
      let stalled = true
      rig.db.transaction = (async (fn: Parameters<typeof realTransaction>[0]) => {
        if (stalled) {
          stalled = false
          await gate
        }
        return realTransaction(fn)
      }) as typeof rig.db.transaction
      try {
        const sending = producer.send({ id: 'pay-8', payload: {} }, (_tx, sql) => rig.addEffect(sql, 'pay-8'))
        await sleep(150)
        expect(await checker.check(client.checked(client.half(0)))).toBe(TransactionResolution.ROLLBACK)
        release()
        await expect(sending).rejects.toBeInstanceOf(TransactionDeadlineError)
      } finally {
        rig.db.transaction = realTransaction
      }
      expect(client.half(0).ended).toBe('rollback')
      expect(await rig.effect('pay-8')).toBe(0)
    })

    it('runs nothing when the broker did not store the half message', async () => {
      const { client, producer } = setup()
      client.failNextSend = true
      let ran = false
      const error = await producer
        .send({ id: 'pay-9', payload: {} }, async () => {
          ran = true
        })
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(PublishNotConfirmedError)
      expect((error as PublishNotConfirmedError).messageId).toBe('pay-9')
      expect(ran).toBe(false)
    })

    it('answers UNKNOWN for a half message Idem did not send, or what `otherwise` says', async () => {
      const errors: unknown[] = []
      const message = { messageId: 'X1', topic: 'payments', properties: new Map<string, string>() }
      const plain = transactionChecker({ db: rig.db, table, onError: (e) => errors.push(e) })
      expect(await plain.check(message)).toBe(TransactionResolution.UNKNOWN)
      expect(String(errors[0])).toMatch(/did not send/)
      const own = transactionChecker({ db: rig.db, table, otherwise: () => TransactionResolution.ROLLBACK })
      expect(await own.check(message)).toBe(TransactionResolution.ROLLBACK)
    })
  })
}

describe('transactionalProducer options', () => {
  const db = { dialect: 'sqlite' as const, transaction: async () => undefined as never }
  it('names what is missing or wrong', () => {
    expect(() => transactionalProducer({ client: undefined as never, db })).toThrow(/needs \{ client \}/)
    expect(() => transactionalProducer({ client: new FakeTransactionalClient(), db: undefined as never })).toThrow(
      /needs \{ db \}/,
    )
    expect(() => transactionalProducer({ client: new FakeTransactionalClient(), db, table: 'bad name' })).toThrow(
      /must be a table name/,
    )
    expect(() => transactionalProducer({ client: new FakeTransactionalClient(), db, timeout: 0 })).toThrow(
      /at least 1 ms/,
    )
    expect(() => transactionChecker({ db: {} as never })).toThrow(/needs \{ db \}/)
  })

  it('refuses a message with no topic, before sending anything', async () => {
    const client = new FakeTransactionalClient()
    const producer = transactionalProducer({ client, db })
    await expect(producer.send({ id: 'a', payload: 1 }, async () => 1)).rejects.toThrow(
      /no destination and no default topic/,
    )
    expect(client.halves).toHaveLength(0)
  })
})
