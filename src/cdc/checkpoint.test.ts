// The checkpoint row on its own, on SQLite (no server needed): created by its DDL, written only
// when absent for a first start, overwritten by each applied transaction, read back whole.

import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { fromBetterSqlite3 } from '../sql/better-sqlite3/better-sqlite3-database.js'
import { CheckpointTable, cdcCheckpointSchema } from './checkpoint.js'

describe('CheckpointTable', () => {
  it('keeps one position per consumer name', async () => {
    const db = fromBetterSqlite3(new Database(':memory:'))
    const a = new CheckpointTable('cdc_checkpoints', 'a')
    const b = new CheckpointTable('cdc_checkpoints', 'b')
    await db.transaction(async (_tx, sql) => {
      await sql.execute(cdcCheckpointSchema('sqlite', 'cdc_checkpoints'), [])
      expect(await a.load(sql)).toBeUndefined()
      await a.save(sql, { gtid: '0-1-5' }, 'if-absent')
      await a.save(sql, { gtid: '0-1-9' }, 'if-absent') // a first start never moves a stored position
      await b.save(sql, { file: 'binlog.000003', position: 1234 })
      expect(await a.load(sql)).toEqual({ gtid: '0-1-5' })
      await a.save(sql, { gtid: '0-1-7', file: 'binlog.000004', position: 99 })
      expect(await a.load(sql)).toEqual({ gtid: '0-1-7', file: 'binlog.000004', position: 99 })
      expect(await b.load(sql)).toEqual({ file: 'binlog.000003', position: 1234 })
    })
  })

  it('refuses a table name that is not an identifier', () => {
    expect(() => new CheckpointTable('x; DROP TABLE y', 'a')).toThrow(TypeError)
    expect(() => cdcCheckpointSchema('mysql', 'a.b.c')).toThrow(TypeError)
  })
})
