// The part of @vlasky/zongji (an optional peer dependency) that idem/cdc uses, as types, so that
// importing idem/cdc never loads it and its declarations never reach ours.

/** One decoded binlog event; only the fields read here. */
export interface BinlogEventLike {
  getEventName(): string
  timestamp: number
  nextPosition: number
  gtid?: string
  // rows events
  tableId?: number
  tableMap?: Record<number, { parentSchema: string; tableName: string }>
  rows?: unknown[]
  // query events
  query?: string
  // mariadbgtid events
  standalone?: boolean
}

export interface ZongJiStartOptions {
  serverId: number
  gtidSet?: string
  filename?: string
  position?: number
  includeSchema?: Record<string, string[] | true>
}

export interface ZongJiLike {
  readonly gtidSet: string | undefined
  options: { filename?: string; position?: number }
  connection: { pause(): void; resume(): void } | null
  on(event: 'binlog', listener: (event: BinlogEventLike) => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'ready' | 'stopped', listener: () => void): unknown
  start(options: ZongJiStartOptions): void
  stop(): void
}

export type ZongJiConstructor = new (dsn: Record<string, unknown>) => ZongJiLike

/** Load @vlasky/zongji, or say how to get it. */
export async function loadZongJi(): Promise<ZongJiConstructor> {
  try {
    const module = (await import('@vlasky/zongji')) as unknown as { default: ZongJiConstructor }
    return module.default
  } catch (error) {
    throw new Error('idem/cdc needs @vlasky/zongji: npm install @vlasky/zongji', { cause: error })
  }
}
