// RocketMQ transactional messages whose fate is decided by the database, never by memory. A send
// puts a half message on the broker, runs the caller's work in a local SQL transaction whose first
// statement records the send as `committed`, and then tells the broker to commit (or, when the
// work failed, to roll back). When the producer dies in between, the broker asks a checker later
// (check-back), and the checker answers from that record: committed → COMMIT; no record once the
// send's deadline passed → it writes `rolled_back` itself, so that a local transaction still
// running can no longer commit, and answers ROLLBACK; no record before the deadline → UNKNOWN
// (the broker asks again). See rocketmq-transaction-sql.ts for why only one of the two records can
// exist.

import { randomUUID } from 'node:crypto'
import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import { ErrorCode, IdempotencyError } from '../../errors.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { SqlDatabase, SqlExecutor } from '../../sql/core/executor.js'
import { encodeJson, KEY_PROPERTY, type RocketMQMessage, toOutgoing } from './rocketmq-producer.js'
import {
  type CheckedMessageLike,
  type RocketMQProducerLike,
  type TransactionCheckerLike,
  TransactionResolution,
} from './rocketmq-producer-driver.js'
import {
  DEFAULT_TRANSACTIONS_TABLE,
  TransactionOutcome,
  transactionStatements,
  transactionsSchema,
} from './rocketmq-transaction-sql.js'

/** Properties Idem puts on a half message, read back by the checker. */
export const TransactionProperties = {
  /** The send's own id: the record's primary key. */
  ID: 'idem-tx-id',
  /** Milliseconds since the epoch after which a send with no record is rolled back. */
  DEADLINE: 'idem-tx-deadline',
} as const

interface TableOptions<Tx> {
  /** Where the records live: a database Idem opens its own transactions on (a pool, not a transaction you opened). */
  db: SqlDatabase<Tx>
  /** The records' table. Default `idem_rocketmq_transactions`. */
  table?: string
}

export interface TransactionCheckerOptions<Tx> extends TableOptions<Tx> {
  /**
   * A half message Idem did not send (no `idem-tx-id` property): your own answer. Default:
   * UNKNOWN, reported through `onError` (the broker gives up after its `transactionCheckMax`).
   */
  otherwise?: (message: CheckedMessageLike) => Promise<TransactionResolution> | TransactionResolution
  /** A check that could not read or write the database (answered UNKNOWN: the broker asks again). */
  onError?: (error: unknown) => void
}

export interface TransactionalProducerOptions<Tx> extends TableOptions<Tx> {
  /**
   * A started `Producer` made with `checker: transactionChecker({ db })` and the topics it sends
   * to (`topic`): the broker checks back with a producer of the topic, any process's. Yours:
   * never shut down here.
   */
  client: RocketMQProducerLike
  /** The topic of messages that name no `destination`. */
  topic?: string
  /** A tag on every message. */
  tag?: string
  /** Payload encoding. Default: UTF-8 JSON. */
  encode?: (payload: unknown) => Buffer
  /**
   * How long the local transaction may take, from the half message's send. After it, a checker
   * that finds no record rolls the message back, and a local transaction still running fails
   * when it commits. Keep it well below the broker's check window (`transactionCheckMax` ×
   * `transactionCheckInterval`) and above the hosts' clock skew. Default '30s'.
   */
  timeout?: Duration
  /**
   * The broker was not told the outcome (commit or rollback after the local transaction): not
   * the caller's failure, the broker checks back and the checker answers from the record.
   */
  onError?: (error: unknown) => void
}

export interface TransactionalSendResult<R> {
  /** The Idem key (the `idem-key` property): consumers recognise a duplicate by it. */
  id: string
  /** The broker's message id of the half message. */
  messageId: string
  /** The send's record id (`idem-tx-id`). */
  transactionId: string
  /** What the work returned. */
  result: R
}

export interface TransactionalProducer<Tx> {
  /**
   * Send `message` as a half message, run `work` in a local transaction, then commit the message
   * if the transaction committed, roll it back if `work` threw (rethrown). `work` gets the
   * transaction handle and its executor: write the business rows through them. Rejects with
   * `PublishNotConfirmedError` when the half message was not stored (nothing ran), and with
   * `TransactionDeadlineError` when a checker rolled the send back first.
   */
  send<R>(
    message: RocketMQMessage,
    work: (tx: Tx, sql: SqlExecutor) => Promise<R> | R,
  ): Promise<TransactionalSendResult<R>>
  /** The DDL for your migrations (each statement IF NOT EXISTS). */
  schema(): string[]
  /** Create the table if it is missing. */
  ensureSchema(): Promise<void>
  /** Delete up to `limit` records decided more than `olderThan` ago (keep them longer than the broker checks back). */
  sweep(olderThan: Duration, limit?: number): Promise<number>
}

/**
 * A checker rolled the send back (its deadline passed with no record) before the local transaction
 * could commit; the local transaction was rolled back too. Sending again (same id) is safe.
 */
export class TransactionDeadlineError extends IdempotencyError {
  readonly transactionId: string
  constructor(transactionId: string, id: string) {
    super(
      ErrorCode.TRANSACTION_DEADLINE_PASSED,
      `the RocketMQ transaction of "${id}" (${transactionId}) outlived its timeout and was rolled back by a ` +
        'check-back; the local transaction was rolled back too',
    )
    this.name = 'TransactionDeadlineError'
    this.transactionId = transactionId
  }
}

const DEFAULT_TIMEOUT_MS = 30_000

/**
 * The checker to give the Producer (`new Producer({ endpoints, topic, checker })`): it answers
 * the broker's check-backs from the records `transactionalProducer` writes, in any process that
 * has it, so a send whose producer died is still decided.
 */
export function transactionChecker<Tx>(options: TransactionCheckerOptions<Tx>): TransactionCheckerLike {
  const { db, table } = tableOptions(options, 'transactionChecker')
  const onError = options.onError ?? (() => {})
  return {
    async check(message) {
      const transactionId = message.properties.get(TransactionProperties.ID)
      if (transactionId === undefined) {
        if (options.otherwise !== undefined) return options.otherwise(message)
        onError(new Error(`a half message Idem did not send (${message.messageId} on "${message.topic}"): UNKNOWN`))
        return TransactionResolution.UNKNOWN
      }
      const deadline = Number(message.properties.get(TransactionProperties.DEADLINE))
      const key = message.properties.get(KEY_PROPERTY) ?? message.messageId
      try {
        const statements = transactionStatements(db.dialect, table)
        const found = await db.transaction((_tx, sql) => outcomeOf(sql, statements.read, transactionId))
        if (found !== undefined) return resolutionOf(found)
        // Still within its timeout: the local transaction may yet commit.
        if (!(Date.now() >= deadline)) return TransactionResolution.UNKNOWN
        // Past it: take the record first. A local transaction holding it makes this insert wait
        // and then do nothing; the locking read then sees what that transaction did.
        const decided = await db.transaction(async (_tx, sql) => {
          await sql.execute(statements.decide, [transactionId, key, TransactionOutcome.ROLLED_BACK])
          return outcomeOf(sql, statements.readLatest, transactionId)
        })
        return decided === undefined ? TransactionResolution.UNKNOWN : resolutionOf(decided)
      } catch (error) {
        onError(error)
        return TransactionResolution.UNKNOWN
      }
    },
  }
}

/**
 * A producer of RocketMQ transactional messages whose commit is the local SQL transaction's.
 *
 * @example
 * const db = fromPg(pool)
 * const client = new Producer({ endpoints, topic: 'payments', checker: transactionChecker({ db }) })
 * await client.startup()
 * const payments = transactionalProducer({ client, db, topic: 'payments' })
 * await payments.ensureSchema()
 * await payments.send({ id: `renewal-${subscriptionId}`, payload }, async (tx) => {
 *   await tx.query('UPDATE subscriptions SET paid_until = paid_until + interval \'1 year\' WHERE id = $1', [subscriptionId])
 * })
 */
export function transactionalProducer<Tx>(options: TransactionalProducerOptions<Tx>): TransactionalProducer<Tx> {
  const { db, table } = tableOptions(options, 'transactionalProducer')
  const client = options.client
  if (typeof client?.send !== 'function' || typeof client.beginTransaction !== 'function') {
    throw new TypeError(
      'transactionalProducer needs { client }: a started RocketMQ Producer made with { checker: transactionChecker({ db }) }',
    )
  }
  const timeoutMs = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : toMs(options.timeout, 'timeout')
  const settings = { topic: options.topic, tag: options.tag, encode: options.encode ?? encodeJson }
  const onError = options.onError ?? (() => {})
  const statements = () => transactionStatements(db.dialect, table)

  return {
    async send(message, work) {
      if (typeof work !== 'function')
        throw new TypeError('transactionalProducer.send(message, work): work must be a function')
      const transactionId = randomUUID()
      const outgoing = toOutgoing(message, settings, 'transactionalProducer', {
        [TransactionProperties.ID]: transactionId,
        [TransactionProperties.DEADLINE]: String(Date.now() + timeoutMs),
      })
      const id = outgoing.keys[0] as string
      const transaction = client.beginTransaction()
      let messageId: string
      try {
        messageId = (await client.send(outgoing, transaction)).messageId
      } catch (error) {
        throw new PublishNotConfirmedError(`RocketMQ did not store the half message of "${id}"`, {
          messageId: id,
          cause: error,
        })
      }
      let result: Awaited<ReturnType<typeof work>>
      try {
        result = await db.transaction(async (tx, sql) => {
          const { decide, readLatest } = statements()
          await sql.execute(decide, [transactionId, id, TransactionOutcome.COMMITTED])
          if ((await outcomeOf(sql, readLatest, transactionId)) !== TransactionOutcome.COMMITTED) {
            throw new TransactionDeadlineError(transactionId, id)
          }
          return await work(tx, sql)
        })
      } catch (error) {
        // Best effort: a rollback the broker misses is decided by a check-back after the deadline.
        await transaction.rollback().catch(onError)
        throw error
      }
      try {
        await transaction.commit()
      } catch (error) {
        onError(
          new Error(`RocketMQ was not told to commit "${id}" (${transactionId}); a check-back will commit it`, {
            cause: error,
          }),
        )
      }
      return { id, messageId, transactionId, result }
    },
    schema: () => transactionsSchema(db.dialect, table),
    async ensureSchema() {
      await db.transaction(async (_tx, sql) => {
        for (const statement of transactionsSchema(db.dialect, table)) await sql.execute(statement, [])
      })
    },
    async sweep(olderThan, limit = 1000) {
      const ms = toMs(olderThan, 'olderThan')
      positiveInteger(limit, 'limit')
      return db.transaction(async (_tx, sql) => (await sql.execute(statements().sweep(limit), [ms])).affectedRows)
    },
  }
}

function tableOptions<Tx>(options: TableOptions<Tx>, where: string): { db: SqlDatabase<Tx>; table: string } {
  const db = options?.db
  if (db === null || typeof db !== 'object' || typeof db.transaction !== 'function') {
    throw new TypeError(`${where} needs { db }: a SqlDatabase (fromPg, fromMysql2, fromBetterSqlite3, …)`)
  }
  const table = options.table ?? DEFAULT_TRANSACTIONS_TABLE
  // Checks the name now, not at the first send.
  transactionStatements(db.dialect, table)
  return { db, table }
}

async function outcomeOf(sql: SqlExecutor, statement: string, transactionId: string): Promise<string | undefined> {
  const row = (await sql.execute(statement, [transactionId])).rows[0]
  return row === undefined ? undefined : String(row.outcome)
}

function resolutionOf(outcome: string): TransactionResolution {
  return outcome === TransactionOutcome.COMMITTED ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK
}
