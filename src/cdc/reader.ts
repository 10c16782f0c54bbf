// One binlog connection: a ZongJi reader started at a position, whose events go through a fresh
// assembler, and whose committed source transactions go to the consumer. A reader is never
// restarted; after a lost connection the consumer opens a new one at its last position.

import { TransactionAssembler } from './assembler.js'
import { streamError } from './errors.js'
import type { BinlogPosition, BinlogSource, SourceTransaction } from './types.js'
import type { BinlogEventLike, ZongJiConstructor, ZongJiStartOptions } from './zongji-like.js'

export interface ReaderOptions {
  ZongJi: ZongJiConstructor
  source: BinlogSource
  serverId: number
  start: BinlogPosition
  follows: (schema: string, table: string) => boolean
  includeSchema: Record<string, string[] | true> | undefined
  /** A committed source transaction, in binlog order. */
  onTransaction: (transaction: SourceTransaction) => void
  /** The reader failed and stopped (a CdcError); called at most once, never after stop(). */
  onFailure: (error: unknown) => void
}

export interface Reader {
  /**
   * Resolves at the server's first answer to the dump request (a Rotate event), rejects with the
   * error it refused it with (a purged position, missing REPLICATION SLAVE).
   */
  readonly opened: Promise<void>
  /** Stop taking packets off the socket until resume(). Call it only from onTransaction. */
  pause(): void
  resume(): void
  /** Close the connection and wait until the server-side dump thread has been killed. */
  stop(): Promise<void>
}

export function openReader(options: ReaderOptions): Reader {
  const zongji = new options.ZongJi({ ...options.source })
  const assembler = new TransactionAssembler(options.follows)
  const stopped = new Promise<void>((resolve) => zongji.on('stopped', resolve))
  let over = false
  let opened: { resolve: () => void; reject: (error: unknown) => void } | undefined
  const open = new Promise<void>((resolve, reject) => {
    opened = { resolve, reject }
  })
  open.catch(() => {})

  const fail = (error: unknown) => {
    if (over) return
    over = true
    zongji.stop()
    opened?.reject(error)
    options.onFailure(error)
  }

  zongji.on('error', (error: Error) => fail(streamError(error)))
  zongji.on('binlog', (event: BinlogEventLike) => {
    opened?.resolve()
    if (over) return
    let committed: SourceTransaction | undefined
    try {
      committed = assembler.push(event, {
        gtidSet: zongji.gtidSet,
        filename: zongji.options.filename,
        position: zongji.options.position,
      })
    } catch (error) {
      fail(error)
      return
    }
    if (committed !== undefined) options.onTransaction(committed)
  })

  const start: ZongJiStartOptions = { serverId: options.serverId }
  if (options.start.gtid !== undefined) start.gtidSet = options.start.gtid
  else if (options.start.file !== undefined) {
    start.filename = options.start.file
    start.position = options.start.position ?? 4
  }
  if (options.includeSchema !== undefined) start.includeSchema = options.includeSchema
  zongji.start(start)

  return {
    opened: open,
    // Only ever called for a commit event, never a TableMap event: the reader pauses and resumes
    // the connection itself around a TableMap whose columns it fetches, and a pause made inside
    // that window would be undone by its resume (and a resume of ours would cut its wait short).
    pause: () => zongji.connection?.pause(),
    resume: () => zongji.connection?.resume(),
    stop: async () => {
      if (!over) {
        over = true
        zongji.stop()
      }
      await stopped
    },
  }
}
