// idem/tracing in transaction mode, on SQLite (better-sqlite3): idem.transaction around the call,
// the claim, the function and the completion inside it, as for run().

import { SpanStatusCode } from '@opentelemetry/api'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  expectChildOf,
  idemAttributes,
  recordSpans,
  testTracer,
} from '../../../test/support/telemetry/tracing.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { fromBetterSqlite3 } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import { SqliteStore } from '../../stores/sqlite/sqlite-store.js'
import { idemTracing } from './index.js'

const spans = recordSpans()

describe('idemTracing on idem.transaction (SQLite)', () => {
  let connection: Database.Database
  let idem: Idempotency

  beforeEach(() => {
    connection = new Database(':memory:')
    const store = new SqliteStore({ client: connection })
    store.ensureSchema()
    connection.exec('CREATE TABLE effects (id TEXT PRIMARY KEY)')
    idem = new Idempotency({ store, scope: 'ledger' })
    idemTracing().watch(idem)
  })
  afterEach(() => connection.close())

  const addEffect = (db: Database.Database, id: string) => db.prepare('INSERT INTO effects (id) VALUES (?)').run(id)

  it('traces idem.transaction with the claim, the execution and the completion as its children', async () => {
    const db = fromBetterSqlite3(connection)
    const out = await idem.transaction(db, { key: 'tx-1' }, (tx) =>
      testTracer().startActiveSpan('write', (span) => {
        addEffect(tx, 'tx-1')
        span.end()
        return 'written'
      }),
    )
    expect(out).toEqual({ status: 'executed', value: 'written' })

    const transaction = spans.one('idem.transaction')
    expect(spans.named('idem.run')).toEqual([])
    expect(spans.childrenOf(transaction)).toEqual(['idem.execute', 'idem.store.begin', 'idem.store.complete'])
    expectChildOf(spans.one('write'), spans.one('idem.execute').spanContext())
    expect(idemAttributes(transaction)).toEqual({
      'idem.scope': 'ledger',
      'idem.key': 'tx-1',
      'idem.record_id': idem.recordId('tx-1'),
      'idem.outcome': 'executed',
      'idem.attempt': 1,
      'idem.takeover': false,
    })
    expect(transaction.status.code).toBe(SpanStatusCode.UNSET)
  })

  it('traces a duplicate as replayed, with the replay event and no execution', async () => {
    const db = fromBetterSqlite3(connection)
    await idem.transaction(db, { key: 'tx-dup' }, (tx) => addEffect(tx, 'tx-dup').changes)
    const out = await idem.transaction(db, { key: 'tx-dup' }, (tx) => addEffect(tx, 'again').changes)
    expect(out).toEqual({ status: 'replayed', value: 1 })

    const duplicate = spans.named('idem.transaction')[1]
    expect(duplicate?.attributes['idem.outcome']).toBe('replayed')
    expect(duplicate?.events.map((event) => event.name)).toEqual(['idem.replay'])
    expect(spans.childrenOf(duplicate as never)).toEqual(['idem.store.begin'])
  })

  it('gives a function that throws (and rolls back) an ERROR status', async () => {
    const db = fromBetterSqlite3(connection)
    const error = await idem
      .transaction(db, { key: 'tx-fail' }, (tx) => {
        addEffect(tx, 'tx-fail')
        throw new Error('constraint violated')
      })
      .catch((e: unknown) => e)
    expect((error as Error).message).toBe('constraint violated')
    const transaction = spans.one('idem.transaction')
    expect(transaction.attributes['idem.outcome']).toBe('error')
    expect(transaction.status).toEqual({ code: SpanStatusCode.ERROR, message: 'constraint violated' })
    expect(spans.one('idem.execute').status.code).toBe(SpanStatusCode.ERROR)
  })
})
