// Binlog events in, committed source transactions out. A source transaction opens at its GTID
// event (or BEGIN, without GTIDs, or its first rows event), gathers one RowChange per row of the
// followed tables, and closes at its commit marker: an XID event (InnoDB) or a COMMIT query
// (non-transactional engines). Only then is it handed on, with the position after that commit,
// so that a target transaction only ever holds whole source transactions.

import { CdcError } from './errors.js'
import type { BinlogPosition, ChangeKind, Row, RowChange, SourceTransaction } from './types.js'
import type { BinlogEventLike } from './zongji-like.js'

/** Where the stream is, read from the reader right after it parsed the event. */
export interface StreamCursor {
  /** Every transaction known processed, including one whose commit was just read (MariaDB position / MySQL set). */
  gtidSet: string | undefined
  filename: string | undefined
  /** A resume offset in `filename`: only ever at a transaction boundary. */
  position: number | undefined
}

const ROWS: Record<string, ChangeKind> = { writerows: 'insert', updaterows: 'update', deleterows: 'delete' }

interface Open {
  gtid: string | undefined
  changes: RowChange[]
}

export class TransactionAssembler {
  readonly #follows: (schema: string, table: string) => boolean
  #open: Open | undefined

  constructor(follows: (schema: string, table: string) => boolean) {
    this.#follows = follows
  }

  /** Take one event; returns the source transaction it commits, if it commits one. */
  push(event: BinlogEventLike, cursor: StreamCursor): SourceTransaction | undefined {
    const name = event.getEventName()
    switch (name) {
      case 'gtid':
      case 'anonymousgtid':
      case 'mariadbgtid': {
        // A new group implies the previous one ended. Groups without a commit marker (DDL) carry
        // no rows; one with rows that never saw its commit would be a stream this code does not
        // understand, and applying or dropping it silently would both be wrong.
        if (this.#open !== undefined && this.#open.changes.length > 0) {
          throw new CdcError(
            'UNSUPPORTED_EVENT',
            `transaction ${this.#open.gtid ?? '(no GTID)'} has row changes but no commit marker before the next transaction`,
          )
        }
        this.#open = { gtid: name === 'anonymousgtid' ? undefined : event.gtid, changes: [] }
        return undefined
      }
      case 'query': {
        const query = (event.query ?? '').trim().toUpperCase()
        if (query === 'BEGIN') {
          if (this.#open === undefined) this.#open = { gtid: event.gtid, changes: [] }
          return undefined
        }
        // ROLLBACK closes a group too: rows in the binlog were written by a non-transactional
        // engine and stay written, so they are applied like committed ones.
        if (query === 'COMMIT' || query === 'ROLLBACK') return this.#close(event, cursor)
        if (query.startsWith('XA ')) throw xa(event)
        return undefined
      }
      case 'xid':
        return this.#close(event, cursor)
      case 'xaprepare':
        throw xa(event)
      case 'writerows':
      case 'updaterows':
      case 'deleterows':
        this.#rows(event, ROWS[name] as ChangeKind, cursor)
        return undefined
      default:
        return undefined
    }
  }

  #rows(event: BinlogEventLike, kind: ChangeKind, cursor: StreamCursor): void {
    const table = event.tableId === undefined ? undefined : event.tableMap?.[event.tableId]
    if (table === undefined) {
      throw new CdcError('UNSUPPORTED_EVENT', 'a rows event arrived without the table it belongs to')
    }
    if (!this.#follows(table.parentSchema, table.tableName)) return
    if (this.#open === undefined) this.#open = { gtid: event.gtid, changes: [] }
    const open = this.#open
    for (const row of event.rows ?? []) {
      const image = row as Row & { before?: Row; after?: Row }
      open.changes.push({
        kind,
        schema: table.parentSchema,
        table: table.tableName,
        before: kind === 'insert' ? undefined : kind === 'update' ? image.before : image,
        after: kind === 'delete' ? undefined : kind === 'update' ? image.after : image,
        gtid: open.gtid,
        file: cursor.filename,
        offset: event.nextPosition,
        index: open.changes.length,
      })
    }
  }

  #close(event: BinlogEventLike, cursor: StreamCursor): SourceTransaction {
    const open = this.#open ?? { gtid: event.gtid, changes: [] }
    this.#open = undefined
    const position: BinlogPosition = {}
    if (cursor.gtidSet !== undefined) position.gtid = cursor.gtidSet
    if (cursor.filename !== undefined) position.file = cursor.filename
    if (cursor.position !== undefined) position.position = cursor.position
    const gtid = open.gtid ?? event.gtid
    return {
      key:
        gtid !== undefined
          ? `gtid:${gtid}`
          : `binlog:${cursor.filename ?? ''}:${cursor.position ?? event.nextPosition}`,
      gtid,
      changes: open.changes,
      position,
      timestamp: event.timestamp,
    }
  }
}

function xa(event: BinlogEventLike): CdcError {
  return new CdcError(
    'UNSUPPORTED_EVENT',
    `XA transaction ${event.gtid ?? ''} in the binlog: its rows are logged at PREPARE and it may still roll back, which this consumer cannot apply exactly once`,
  )
}

/** Which tables `tables` ('schema.table', 'schema.*') follows, and the reader's schema filter for them. */
export function tableFilter(tables: readonly string[] | undefined): {
  follows: (schema: string, table: string) => boolean
  includeSchema: Record<string, string[] | true> | undefined
} {
  if (tables === undefined) return { follows: () => true, includeSchema: undefined }
  if (!Array.isArray(tables) || tables.length === 0) {
    throw new TypeError("tables must be a non-empty array of 'schema.table' or 'schema.*'")
  }
  const include: Record<string, string[] | true> = {}
  for (const entry of tables) {
    const parts = typeof entry === 'string' ? entry.split('.') : []
    if (parts.length !== 2 || parts.some((part) => part.length === 0)) {
      throw new TypeError(`tables: ${JSON.stringify(entry)} is not 'schema.table' or 'schema.*'`)
    }
    const [schema, table] = parts as [string, string]
    const current = include[schema]
    if (table === '*') include[schema] = true
    else if (current !== true) include[schema] = [...(current ?? []), table]
  }
  return {
    follows: (schema, table) => {
      const entry = include[schema]
      return entry === true || entry?.includes(table) === true
    },
    includeSchema: include,
  }
}
