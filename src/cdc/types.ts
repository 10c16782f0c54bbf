// The shapes idem/cdc hands to the caller: one row change, the source transaction it belongs to,
// a binlog position, and the options and handle of consumeBinlog.

import type { Idempotency } from '../core/idempotency.js'
import type { SqlDatabase, SqlExecutor } from '../sql/core/executor.js'

export type Row = Record<string, unknown>

export type ChangeKind = 'insert' | 'update' | 'delete'

/**
 * A place in the source's binlog to resume after. `gtid` (a MariaDB GTID position such as
 * '0-1-42,1-2-7', or a MySQL GTID set 'uuid:1-42') wins when set, and is valid on any server of the
 * replication topology; otherwise `file` and `position`, valid on that one server.
 */
export interface BinlogPosition {
  gtid?: string
  file?: string
  position?: number
}

/** One row written by the source: an INSERT, an UPDATE or a DELETE of one row. */
export interface RowChange {
  kind: ChangeKind
  schema: string
  table: string
  /** The row before the change: set for updates and deletes. */
  before: Row | undefined
  /** The row after the change: set for inserts and updates. */
  after: Row | undefined
  /** The source transaction's GTID ('0-1-42' on MariaDB), undefined on a server without GTIDs. */
  gtid: string | undefined
  /** The binlog file and end offset of the rows event that carried the change (0 where the server does not say). */
  file: string | undefined
  offset: number
  /** 0-based place of this change in its source transaction. */
  index: number
}

/** A committed source transaction: its row changes (in binlog order) and where it ends. */
export interface SourceTransaction {
  /** The idempotency key of its target transaction: `gtid:<gtid>`, or `binlog:<file>:<end offset>` without GTIDs. */
  key: string
  gtid: string | undefined
  changes: RowChange[]
  /** The position just after its commit: the checkpoint written with it. */
  position: BinlogPosition
  /** When the source committed it (ms since the epoch, second precision). */
  timestamp: number
}

/** What `apply` gets besides the change and the target transaction's handle. */
export interface ApplyContext {
  transaction: Readonly<Omit<SourceTransaction, 'changes'>> & { size: number }
  /** Idem's executor on the same target transaction (placeholders of the target's dialect). */
  sql: SqlExecutor
}

/** Connection settings of the source server (a mysql2 connection options subset, passed through). */
export interface BinlogSource {
  host?: string
  port?: number
  user?: string
  password?: string
  /** Any other mysql2 connection option (ssl, timezone, dateStrings…); it also shapes decoded row values. */
  [option: string]: unknown
}

export interface ConsumeBinlogOptions<Tx> {
  source: BinlogSource
  /**
   * The target: a pg `Pool`, a mysql2/promise `Pool`, or a `SqlDatabase` from any adapter
   * (`fromKysely(db)`, `fromKnex(knex)`…). The idempotency store must live in that same database.
   */
  client: unknown
  /** An Idempotency on a SQL store (PostgresStore, MysqlStore) of the target database. */
  idempotency: Idempotency
  /**
   * Called for every row change, in binlog order, inside the target transaction of its source
   * transaction: write with `tx` (the pool's client or connection, or the adapter's handle).
   */
  apply: (change: RowChange, tx: Tx, context: ApplyContext) => Promise<void> | void
  /** Replication client id, unique among the source's replicas and other binlog readers. */
  serverId: number
  /**
   * Names this consumer: its checkpoint row and its records' scope (`cdc:<name>`). Two consumers
   * applying the same source to different places need different names. Default 'default'.
   */
  name?: string
  /** Tables to follow, as 'schema.table' or 'schema.*'; default every table. */
  tables?: readonly string[]
  /** Where to start when no checkpoint is stored: 'end' (default), 'start' (the oldest binlog kept), or a position. */
  from?: 'end' | 'start' | BinlogPosition
  /** The checkpoint table in the target database (default 'idem_cdc_checkpoints'). */
  checkpointTable?: string
  /** Create the checkpoint table when it is missing (default true). */
  ensureSchema?: boolean
  /** Tries per source transaction before the consumer stops (default 5), with backoff from `retryDelayMs`. */
  maxAttempts?: number
  /** First backoff after a failed apply, doubled each time up to 30 s (default 1000). */
  retryDelayMs?: number
  /** Committed source transactions held in memory before reading pauses (default 100). */
  maxPending?: number
  /**
   * How often, at most, a position is saved while only transactions of other tables go by (ms,
   * default 10000), so that a quiet consumer's checkpoint does not point into purged logs.
   */
  idleCheckpointMs?: number
  /** Told about every failure: retried ones (`fatal: false`) and the one that stops the consumer. */
  onError?: (error: unknown, info: { fatal: boolean; attempt: number; transaction: string | undefined }) => void
}

export interface ConsumerStats {
  /** Source transactions applied (target transactions committed by this consumer). */
  applied: number
  /** Source transactions read again and found already applied (their records replayed): not applied twice. */
  replayed: number
  /** Source transactions with no change in the followed tables. */
  skipped: number
  /** Row changes handed to `apply` in committed target transactions. */
  changes: number
  /** Failed tries (each also told to onError). */
  errors: number
}

export interface BinlogConsumer {
  /** The position after the last source transaction this consumer committed (or the start position). */
  readonly position: BinlogPosition | undefined
  readonly stats: Readonly<ConsumerStats>
  /** Settles when the consumer stops: resolves after close(), rejects with the error that stopped it. */
  readonly done: Promise<void>
  /** Stop reading, let the transaction being applied finish, and release the connections. */
  close(): Promise<void>
}

/** The target, whichever form it was given in. */
export type TargetDatabase = SqlDatabase<unknown>
