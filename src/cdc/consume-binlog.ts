// consumeBinlog: read a MariaDB (or MySQL) row-based binlog and apply each source transaction to
// a target SQL database as one target transaction, through idem.transaction: the row changes,
// the transaction's idempotency record (its key derived from the GTID, or file and offset) and
// the checkpoint commit together. A crash at any point leaves the target at a source transaction
// boundary, with a checkpoint that says exactly which one; a transaction read twice finds its
// record and is replayed, not applied again.

import { setTimeout as sleep } from 'node:timers/promises'
import { FingerprintMismatchError } from '../errors.js'
import { tableFilter } from './assembler.js'
import { CheckpointTable, cdcCheckpointSchema } from './checkpoint.js'
import { CdcError } from './errors.js'
import { fingerprintOf } from './fingerprint.js'
import { check } from './options.js'
import { checkFilePosition, inspectSource, resolveStart } from './preflight.js'
import { openReader, type Reader } from './reader.js'
import { targetDatabase } from './target.js'
import type { BinlogConsumer, BinlogPosition, ConsumeBinlogOptions, ConsumerStats, SourceTransaction } from './types.js'
import { loadZongJi } from './zongji-like.js'

const MAX_RETRY_DELAY_MS = 30_000

/**
 * Start consuming. Resolves once the stream is open at the checkpoint (or at `from`, the first
 * time); rejects with a CdcError when the source cannot be consumed (no binlog, not ROW, missing
 * privileges, a position the server no longer has) or a TypeError for bad options.
 */
export async function consumeBinlog<Tx = unknown>(options: ConsumeBinlogOptions<Tx>): Promise<BinlogConsumer> {
  const settings = check(options)
  const target = targetDatabase(options.client)
  const { follows, includeSchema } = tableFilter(options.tables)
  const checkpoints = new CheckpointTable(settings.table, settings.name)
  const ZongJi = await loadZongJi()
  const facts = await inspectSource(options.source, options.serverId)

  if (options.ensureSchema !== false) {
    await target.transaction(async (_tx, sql) => {
      await sql.execute(cdcCheckpointSchema(sql.dialect, settings.table), [])
    })
  }
  let start = await target.transaction((_tx, sql) => checkpoints.load(sql))
  if (start === undefined) {
    const from = options.from ?? 'end'
    const resolved = typeof from === 'string' ? resolveStart(facts, from) : { ...from }
    // Stored before the first event is read: a consumer that dies before its first commit must
    // resume here, not at a later 'end'.
    await target.transaction((_tx, sql) => checkpoints.save(sql, resolved, 'if-absent'))
    start = (await target.transaction((_tx, sql) => checkpoints.load(sql))) ?? resolved
  }
  checkFilePosition(facts, start)

  const stats: ConsumerStats = { applied: 0, replayed: 0, skipped: 0, changes: 0, errors: 0 }
  /** After the last source transaction applied, replayed or skipped: where a new reader starts. */
  let position: BinlogPosition = start
  let lastSaved = Date.now()
  const queue: SourceTransaction[] = []
  let paused = false
  let stopping = false
  let working: Promise<void> | undefined
  let reader: Reader
  /** Lost connections in a row, reset when a new one opens. */
  let lost = 0
  let started = false
  const stopWaiting = new AbortController()
  let settle: { resolve: () => void; reject: (error: unknown) => void } | undefined
  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject }
  })
  done.catch(() => {})

  const report = (error: unknown, info: { fatal: boolean; attempt: number; transaction: string | undefined }) => {
    try {
      options.onError?.(error, info)
    } catch {
      // A throwing listener must not change what the consumer does.
    }
  }

  /** `fromWorker`: called by the worker itself, which must not wait for its own end. */
  const stop = async (error?: unknown, fromWorker = false): Promise<void> => {
    if (stopping) return
    stopping = true
    stopWaiting.abort()
    queue.length = 0
    const readerStopped = reader.stop()
    if (error !== undefined) report(error, { fatal: true, attempt: lost, transaction: undefined })
    if (!fromWorker) await working?.catch(() => {})
    await readerStopped
    if (error === undefined) settle?.resolve()
    else settle?.reject(error)
  }

  const applyOne = async (transaction: SourceTransaction): Promise<void> => {
    if (transaction.changes.length === 0) {
      stats.skipped += 1
      if (Date.now() - lastSaved >= settings.idleCheckpointMs) {
        await target.transaction((_tx, sql) => checkpoints.save(sql, transaction.position))
        lastSaved = Date.now()
      }
      position = transaction.position
      return
    }
    const { changes, ...info } = transaction
    const context = { transaction: { ...info, size: changes.length } }
    const outcome = await options.idempotency.transaction(
      target,
      { key: transaction.key, scope: settings.scope, fingerprint: fingerprintOf(transaction) },
      async (tx, ctx) => {
        for (const change of changes) await options.apply(change, tx as Tx, { ...context, sql: ctx.sql })
        await checkpoints.save(ctx.sql, transaction.position)
        return { changes: changes.length }
      },
    )
    if (outcome.status === 'executed') {
      stats.applied += 1
      stats.changes += changes.length
    } else {
      // Committed before, with a checkpoint at or past it, unless the checkpoint was rewound:
      // moving it forward again spares the next start this stretch of replays.
      stats.replayed += 1
      await target.transaction((_tx, sql) => checkpoints.save(sql, transaction.position))
    }
    lastSaved = Date.now()
    position = transaction.position
  }

  const applyWithRetries = async (transaction: SourceTransaction): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await applyOne(transaction)
        return
      } catch (error) {
        stats.errors += 1
        // The same GTID with other rows: the source's history was rewritten (RESET MASTER, a
        // restored backup). Never a reason to skip; never worth retrying.
        if (error instanceof FingerprintMismatchError) {
          throw new CdcError(
            'APPLY_FAILED',
            `source transaction ${transaction.key} was applied before with other row changes: the source's binlog history changed`,
            { cause: error },
          )
        }
        if (attempt >= settings.maxAttempts) {
          throw new CdcError(
            'APPLY_FAILED',
            `source transaction ${transaction.key} failed ${attempt} times: ${(error as Error)?.message}`,
            { cause: error },
          )
        }
        report(error, { fatal: false, attempt, transaction: transaction.key })
        await backoff(attempt)
        if (stopping) return
      }
    }
  }

  const backoff = (attempt: number) =>
    sleep(Math.min(settings.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS), undefined, {
      signal: stopWaiting.signal,
    }).catch(() => {})

  const work = async (): Promise<void> => {
    while (!stopping) {
      const next = queue.shift()
      if (next === undefined) return
      await applyWithRetries(next)
      if (paused && queue.length <= settings.maxPending / 2 && !stopping) {
        paused = false
        reader.resume()
      }
    }
  }

  const kick = () => {
    if (working !== undefined || stopping) return
    working = work()
      .catch((error: unknown) => stop(error, true))
      .finally(() => {
        working = undefined
        if (queue.length > 0) kick()
      })
  }

  const open = (from: BinlogPosition): Reader =>
    openReader({
      ZongJi,
      source: options.source,
      serverId: options.serverId,
      start: from,
      follows,
      includeSchema,
      onTransaction: (transaction) => {
        queue.push(transaction)
        if (queue.length >= settings.maxPending && !paused) {
          paused = true
          reader.pause()
        }
        kick()
      },
      // Before the first reader opens, its failure is consumeBinlog's own rejection.
      onFailure: (error) => {
        if (started) void reconnect(error)
      },
    })

  // A lost connection is read again from the last position this consumer got past, on a new
  // connection: what was queued but not applied is dropped and comes again. Refusals (a purged
  // position, privileges) and undecodable events stop the consumer instead.
  const reconnect = async (error: unknown): Promise<void> => {
    if (stopping) return
    lost += 1
    if (!(error instanceof CdcError && error.code === 'STREAM_FAILED') || lost >= settings.maxAttempts) {
      await stop(error)
      return
    }
    report(error, { fatal: false, attempt: lost, transaction: undefined })
    queue.length = 0
    paused = false
    await working?.catch(() => {})
    await backoff(lost)
    if (stopping) return
    reader = open(position)
    reader.opened.then(
      () => {
        lost = 0
      },
      () => {},
    )
  }

  reader = open(start)
  // The server answers a dump request with a Rotate event, or with the error that refuses it
  // (a purged position, missing REPLICATION SLAVE): wait for one or the other.
  try {
    await reader.opened
  } catch (error) {
    stopping = true
    await reader.stop()
    throw error
  }
  started = true

  return {
    get position() {
      return position
    },
    stats,
    done,
    close: () => stop(),
  }
}
