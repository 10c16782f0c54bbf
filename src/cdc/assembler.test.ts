// The assembler alone, on hand-made events: where a source transaction begins and ends, what a
// change carries, what is skipped, and what is refused rather than guessed.

import { describe, expect, it } from 'vitest'
import { type StreamCursor, TransactionAssembler, tableFilter } from './assembler.js'
import { CdcError } from './errors.js'
import type { BinlogEventLike } from './zongji-like.js'

const tableMap = { 7: { parentSchema: 'shop', tableName: 'orders' }, 8: { parentSchema: 'shop', tableName: 'log' } }
const event = (name: string, fields: Partial<BinlogEventLike> = {}): BinlogEventLike => ({
  getEventName: () => name,
  timestamp: 1_700_000_000_000,
  nextPosition: 100,
  ...fields,
})
const cursor = (gtidSet: string | undefined, position = 500): StreamCursor => ({
  gtidSet,
  filename: 'binlog.000002',
  position,
})

describe('TransactionAssembler', () => {
  it('hands on a source transaction only at its commit, with every row change and the position after it', () => {
    const assembler = new TransactionAssembler(tableFilter(['shop.orders']).follows)
    const at = cursor('0-1-41')
    expect(assembler.push(event('mariadbgtid', { gtid: '0-1-42' }), at)).toBeUndefined()
    expect(assembler.push(event('tablemap', { gtid: '0-1-42' }), at)).toBeUndefined()
    const rows = [{ id: 1 }, { id: 2 }]
    assembler.push(event('writerows', { gtid: '0-1-42', tableId: 7, tableMap, rows, nextPosition: 200 }), at)
    const update = [{ before: { id: 1, s: 'new' }, after: { id: 1, s: 'paid' } }]
    assembler.push(event('updaterows', { gtid: '0-1-42', tableId: 7, tableMap, rows: update }), at)
    assembler.push(event('writerows', { gtid: '0-1-42', tableId: 8, tableMap, rows: [{ id: 9 }] }), at)
    assembler.push(event('deleterows', { gtid: '0-1-42', tableId: 7, tableMap, rows: [{ id: 2 }] }), at)
    const committed = assembler.push(event('xid', { gtid: '0-1-42' }), cursor('0-1-42', 900))
    expect(committed).toMatchObject({
      key: 'gtid:0-1-42',
      gtid: '0-1-42',
      position: { gtid: '0-1-42', file: 'binlog.000002', position: 900 },
    })
    expect(committed?.changes).toEqual([
      expect.objectContaining({
        kind: 'insert',
        table: 'orders',
        before: undefined,
        after: { id: 1 },
        index: 0,
        offset: 200,
      }),
      expect.objectContaining({ kind: 'insert', after: { id: 2 }, index: 1 }),
      expect.objectContaining({ kind: 'update', before: { id: 1, s: 'new' }, after: { id: 1, s: 'paid' }, index: 2 }),
      expect.objectContaining({ kind: 'delete', before: { id: 2 }, after: undefined, index: 3 }),
    ])
  })

  it('keys a transaction without GTID by the file and offset of its end, and closes one on COMMIT', () => {
    const assembler = new TransactionAssembler(() => true)
    assembler.push(event('query', { query: 'BEGIN' }), cursor(undefined))
    assembler.push(event('writerows', { tableId: 7, tableMap, rows: [{ id: 1 }] }), cursor(undefined))
    const committed = assembler.push(event('query', { query: 'COMMIT' }), cursor(undefined, 1234))
    expect(committed).toMatchObject({
      key: 'binlog:binlog.000002:1234',
      position: { file: 'binlog.000002', position: 1234 },
    })
    expect(committed?.position.gtid).toBeUndefined()
  })

  it('hands on a transaction of unfollowed tables with no changes, and nothing for DDL', () => {
    const assembler = new TransactionAssembler(tableFilter(['other.*']).follows)
    assembler.push(event('mariadbgtid', { gtid: '0-1-5', standalone: true }), cursor('0-1-4'))
    expect(assembler.push(event('query', { query: 'CREATE TABLE t (id INT)' }), cursor('0-1-4'))).toBeUndefined()
    assembler.push(event('mariadbgtid', { gtid: '0-1-6' }), cursor('0-1-5'))
    assembler.push(event('writerows', { tableId: 7, tableMap, rows: [{ id: 1 }] }), cursor('0-1-5'))
    expect(assembler.push(event('xid'), cursor('0-1-6'))?.changes).toEqual([])
  })

  it('refuses XA transactions and rows without a commit, instead of applying or dropping them', () => {
    const xa = new TransactionAssembler(() => true)
    xa.push(event('mariadbgtid', { gtid: '0-1-7' }), cursor('0-1-6'))
    xa.push(event('writerows', { tableId: 7, tableMap, rows: [{ id: 1 }] }), cursor('0-1-6'))
    expect(() => xa.push(event('xaprepare'), cursor('0-1-6'))).toThrow(CdcError)
    const torn = new TransactionAssembler(() => true)
    torn.push(event('mariadbgtid', { gtid: '0-1-8' }), cursor('0-1-7'))
    torn.push(event('writerows', { tableId: 7, tableMap, rows: [{ id: 1 }] }), cursor('0-1-7'))
    expect(() => torn.push(event('mariadbgtid', { gtid: '0-1-9' }), cursor('0-1-8'))).toThrow(/no commit marker/)
  })
})

describe('tableFilter', () => {
  it('follows named tables and whole schemas, and gives the reader the same filter', () => {
    const { follows, includeSchema } = tableFilter(['shop.orders', 'shop.items', 'audit.*'])
    expect(includeSchema).toEqual({ shop: ['orders', 'items'], audit: true })
    expect([follows('shop', 'orders'), follows('shop', 'log'), follows('audit', 'x'), follows('x', 'orders')]).toEqual([
      true,
      false,
      true,
      false,
    ])
  })
})
