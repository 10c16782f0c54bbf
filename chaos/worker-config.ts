// What the run tells a worker process (as JSON in CHAOS_WORKER) and what a worker reports back
// over IPC.

/** run() modes by store, transaction modes (`transaction-…`: the charge commits with the record), the control's none. */
export type StoreMode =
  | 'redis'
  | 'postgres'
  | 'mysql'
  | 'sqlite'
  | 'transaction-postgres'
  | 'transaction-mysql'
  | 'transaction-sqlite'
  | 'none'
export type BrokerName = 'redis-streams' | 'nats' | 'mqtt' | 'kafka' | 'rabbitmq' | 'rocketmq'

export interface WorkerConfig {
  run: string
  combo: string
  broker: BrokerName
  /** The broker, through its proxy. */
  brokerPort: number
  /** Stream / subject / queue names of this combination. */
  topic: string
  group: string
  store: StoreMode
  /** The store, through its proxy (unused for sqlite and none). */
  storePort: number
  /** SQLite store: the database file shared by the workers. */
  sqliteFile?: string
  /** The judge's database, where run() modes and the control charge (transaction modes charge on the transaction's handle). */
  ledgerUrl: string
  leaseMs: number
  concurrency: number
  /** The control: the same effect and acks, no Idem. */
  naive: boolean
}

export interface WorkerCounters {
  executed: number
  replayed: number
  retried: number
  deadLettered: number
  /** Executions whose outcome could not be stored because the claim was lost (fencing at work). */
  leaseLost: number
  /** Failed attempts to store an outcome with the store unreachable (the core tries 3 times, then gives up). */
  completeErrors: number
}

export type WorkerMessage = { ready: true } | { counters: WorkerCounters }

export const ZERO_COUNTERS: WorkerCounters = {
  executed: 0,
  replayed: 0,
  retried: 0,
  deadLettered: 0,
  leaseLost: 0,
  completeErrors: 0,
}
