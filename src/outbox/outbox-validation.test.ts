// What the outbox refuses before any statement runs, and the claim's locking per dialect.

import { describe, expect, it } from 'vitest'
import type { SqlExecutor } from '../sql/core/executor.js'
import { Outbox } from './outbox.js'
import { outboxSchema } from './outbox-schema.js'
import { outboxStatements } from './outbox-sql.js'
import { OutboxRelay } from './relay.js'

/** An executor that records statements instead of running them. */
function recorder(): SqlExecutor & { calls: [string, readonly unknown[]][] } {
  const calls: [string, readonly unknown[]][] = []
  return {
    dialect: 'postgres',
    calls,
    async execute(sql, params) {
      calls.push([sql, params])
      return { rows: [], affectedRows: 1 }
    },
  }
}

describe('outbox.add', () => {
  const outbox = new Outbox()

  it('generates a UUIDv7 id when none is given, and sends the message as parameters', async () => {
    const sql = recorder()
    const id = await outbox.add(sql, { payload: { a: "'); DROP TABLE x; --" }, headers: { k: 'v' } })
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(sql.calls[0]?.[1]).toEqual([id, null, JSON.stringify({ a: "'); DROP TABLE x; --" }), '{"k":"v"}'])
    expect(sql.calls[0]?.[0]).not.toContain('DROP')
  })

  it.each([
    ['an empty id', { id: '', payload: 1 }],
    ['a non-ASCII id', { id: 'é', payload: 1 }],
    ['an id over 255 characters', { id: 'x'.repeat(256), payload: 1 }],
    ['a payload JSON cannot hold', { payload: undefined }],
    ['a payload with a bigint', { payload: { n: 1n } }],
    ['a header that is not a string', { payload: 1, headers: { n: 1 } }],
    ['an empty destination', { payload: 1, destination: '' }],
  ])('refuses %s with a TypeError and runs nothing', async (_what, message) => {
    const sql = recorder()
    await expect(outbox.add(sql, message as never)).rejects.toThrow(TypeError)
    expect(sql.calls).toEqual([])
  })

  it('refuses a table name that is not one', () => {
    expect(() => new Outbox({ table: 'outbox; DROP TABLE users' })).toThrow(TypeError)
    expect(() => new Outbox({ table: 'a.b.c' })).toThrow(TypeError)
    expect(new Outbox({ table: 'app.events_outbox' }).table).toBe('app.events_outbox')
  })
})

describe('outbox statements', () => {
  it('claims with FOR UPDATE SKIP LOCKED on PostgreSQL and MySQL, and without row locks on SQLite', () => {
    expect(outboxStatements('postgres', 'o').selectClaimable(10, true)).toMatch(/LIMIT 10 FOR UPDATE SKIP LOCKED$/)
    expect(outboxStatements('mysql', 'o').selectClaimable(10, true)).toMatch(/LIMIT 10 FOR UPDATE SKIP LOCKED$/)
    expect(outboxStatements('mysql', 'o').selectClaimable(10, false)).toMatch(/LIMIT 10 FOR UPDATE$/)
    expect(outboxStatements('sqlite', 'o').selectClaimable(10, true)).toMatch(/LIMIT 10$/)
  })

  it('qualifies the table and its indexes with the schema it was given', () => {
    const [table, ...indexes] = outboxSchema('postgres', 'app.outbox')
    expect(table).toContain('CREATE TABLE IF NOT EXISTS "app"."outbox"')
    for (const index of indexes) expect(index).toContain('ON "app"."outbox"')
    expect(outboxSchema('sqlite', 'main.outbox')[1]).toContain('"main"."outbox_id" ON "outbox"')
  })
})

describe('OutboxRelay options', () => {
  const base = { outbox: new Outbox(), db: { dialect: 'sqlite' as const, transaction: async () => undefined as never } }
  const producer = { publish: async () => {} }

  it('refuses a batch size, attempt budget or lease that cannot work', () => {
    expect(() => new OutboxRelay({ ...base, producer, batchSize: 0 })).toThrow(RangeError)
    expect(() => new OutboxRelay({ ...base, producer, batchSize: 1001 })).toThrow(RangeError)
    expect(() => new OutboxRelay({ ...base, producer, maxAttempts: 0 })).toThrow(RangeError)
    expect(() => new OutboxRelay({ ...base, producer, lease: 'soon' })).toThrow(RangeError)
    expect(() => new OutboxRelay({ ...base } as never)).toThrow(TypeError)
  })

  it('names the option and the value in the one wording every count of Idem uses', async () => {
    expect(() => new OutboxRelay({ ...base, producer, batchSize: 0 })).toThrow(
      'batchSize must be a positive integer, got 0',
    )
    expect(() => new OutboxRelay({ ...base, producer, batchSize: 1001 })).toThrow(
      'batchSize must be at most 1000, got 1001',
    )
    expect(() => new OutboxRelay({ ...base, producer, maxAttempts: 1.5 })).toThrow(
      'maxAttempts must be a positive integer, got 1.5',
    )
    expect(() => new Outbox().sweep(recorder(), '7d', 0)).toThrow('limit must be a positive integer, got 0')
  })
})
