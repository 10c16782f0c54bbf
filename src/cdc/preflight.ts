// Before reading: ask the source whether its binlog can be consumed at all, so that a server
// without a binlog, with statement logging or partial row images, or a user without the
// privileges, fails with an error that names the setting, instead of a stream that never
// delivers or delivers half rows. Also where 'end' and 'start' are on this server.

import { CdcError, errnoOf } from './errors.js'
import type { BinlogPosition, BinlogSource } from './types.js'

export interface SourceFacts {
  version: string
  isMariaDb: boolean
  /** MariaDB always; MySQL with gtid_mode=ON. */
  gtids: boolean
  /** The binlog files the server still has, oldest first, with their sizes. */
  binlogs: { name: string; size: number }[]
  /** The server's current GTID position/set (MariaDB gtid_binlog_pos, MySQL gtid_executed). */
  gtidNow: string | undefined
}

interface PromiseConnection {
  query(sql: string): Promise<[unknown, unknown]>
  end(): Promise<void>
}

async function connect(source: BinlogSource): Promise<PromiseConnection> {
  let mysql: { createConnection(options: Record<string, unknown>): Promise<PromiseConnection> }
  try {
    mysql = (await import('mysql2/promise')) as unknown as typeof mysql
  } catch (error) {
    throw new Error('idem/cdc needs mysql2 (npm install mysql2), which @vlasky/zongji runs on', { cause: error })
  }
  return mysql.createConnection({ ...source })
}

export async function inspectSource(source: BinlogSource, serverId: number): Promise<SourceFacts> {
  const connection = await connect(source)
  try {
    const rows = async (sql: string) => (await connection.query(sql))[0] as Record<string, unknown>[]
    const [settings] = await rows(
      'SELECT VERSION() AS version, @@GLOBAL.log_bin AS logBin, @@GLOBAL.binlog_format AS format, @@GLOBAL.binlog_row_image AS rowImage, @@GLOBAL.server_id AS serverId',
    )
    const version = String(settings?.version ?? '')
    const isMariaDb = /mariadb/i.test(version)
    if (Number(settings?.logBin) !== 1) {
      throw new CdcError(
        'BINLOG_OFF',
        `the source (${version}) writes no binary log: start it with --log-bin (and --binlog-format=ROW, a --server-id)`,
      )
    }
    if (String(settings?.format).toUpperCase() !== 'ROW') {
      throw new CdcError(
        'BINLOG_FORMAT_NOT_ROW',
        `the source's binlog_format is ${String(settings?.format)}: set binlog_format=ROW (SET GLOBAL and in the server's configuration), or statements instead of rows are logged`,
      )
    }
    if (String(settings?.rowImage).toUpperCase() !== 'FULL') {
      throw new CdcError(
        'BINLOG_ROW_IMAGE_NOT_FULL',
        `the source's binlog_row_image is ${String(settings?.rowImage)}: set binlog_row_image=FULL, or updates and deletes arrive with partial rows`,
      )
    }
    if (Number(settings?.serverId) === serverId) {
      throw new TypeError(`serverId ${serverId} is the source's own server_id: pick an id no server or reader uses`)
    }
    let binlogs: { name: string; size: number }[]
    try {
      binlogs = (await rows('SHOW BINARY LOGS')).map((row) => ({
        name: String(row.Log_name),
        size: Number(row.File_size),
      }))
    } catch (error) {
      if (errnoOf(error) === 1227 || errnoOf(error) === 1045) {
        throw new CdcError(
          'MISSING_PRIVILEGES',
          `the source user may not list the binlogs (${(error as Error).message}): grant REPLICATION CLIENT (BINLOG MONITOR on MariaDB), REPLICATION SLAVE and SELECT`,
          { cause: error },
        )
      }
      throw error
    }
    let gtids = isMariaDb
    let gtidNow: string | undefined
    if (isMariaDb) {
      const [row] = await rows('SELECT @@GLOBAL.gtid_binlog_pos AS pos')
      gtidNow = String(row?.pos ?? '').trim()
    } else {
      const [row] = await rows('SELECT @@GLOBAL.gtid_mode AS mode, @@GLOBAL.gtid_executed AS executed')
      gtids = String(row?.mode).toUpperCase() === 'ON'
      if (gtids) gtidNow = String(row?.executed ?? '').replace(/\s/g, '')
    }
    return { version, isMariaDb, gtids, binlogs, gtidNow }
  } finally {
    await connection.end().catch(() => {})
  }
}

/** The concrete position 'end' or 'start' means on this server. */
export function resolveStart(facts: SourceFacts, from: 'end' | 'start'): BinlogPosition {
  if (facts.gtids) return { gtid: from === 'start' ? '' : (facts.gtidNow ?? '') }
  const file = from === 'start' ? facts.binlogs[0] : facts.binlogs[facts.binlogs.length - 1]
  if (file === undefined) throw new CdcError('BINLOG_OFF', 'the source lists no binary log files')
  return { file: file.name, position: from === 'start' ? 4 : file.size }
}

/**
 * Refuse a file+offset position the server no longer has, before reading. (A GTID position is
 * checked by the server itself when the stream opens.)
 */
export function checkFilePosition(facts: SourceFacts, position: BinlogPosition): void {
  if (position.gtid !== undefined || position.file === undefined) return
  const file = facts.binlogs.find((log) => log.name === position.file)
  if (file === undefined) {
    throw new CdcError(
      'POSITION_UNAVAILABLE',
      `binlog ${position.file} is no longer on the source (purged?); it has ${facts.binlogs.map((log) => log.name).join(', ') || 'none'}. Nothing was skipped; start from a fresh snapshot and a new position on purpose`,
    )
  }
  if ((position.position ?? 4) > file.size) {
    throw new CdcError(
      'POSITION_UNAVAILABLE',
      `offset ${position.position} is past the end of ${file.name} (${file.size} bytes)`,
    )
  }
}
