// The subset of node-redis (`redis` / `@redis/client`, versions 4 to 6) that Idem uses, so that
// importing a store never loads it: a connected `createClient()` or `createCluster()` fits these
// types as it is. Imports nothing.

/** A connected node-redis client (`createClient()`), as Idem sends it commands. */
export interface NodeRedisClient {
  /**
   * Any command, written with the other commands of the same tick (node-redis batches them). The
   * arguments are a mutable array: node-redis 4 types them so (5 and later take a readonly one).
   */
  sendCommand(args: string[]): Promise<unknown>
  /** False until `connect()` resolves, and again after `close()`/`quit()`. */
  readonly isOpen: boolean
  /** node-redis 5 and later: ends the connection once pending replies are in. */
  close?(): Promise<unknown>
  /** node-redis 4 (deprecated later): the same. */
  quit?(): Promise<unknown>
  /** node-redis 5 and later: ends the connection at once. */
  destroy?(): void
  /** node-redis 4: the same. */
  disconnect?(): Promise<unknown> | undefined
  /** Read only to name the server in messages. */
  readonly options?: { url?: string; socket?: { host?: string; port?: number; path?: string } }
}

/** A connected node-redis Cluster (`createCluster()`): commands are routed by their first key. */
export interface NodeRedisCluster {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>
  readonly isOpen: boolean
  close?(): Promise<unknown>
  quit?(): Promise<unknown>
  destroy?(): void
  disconnect?(): Promise<unknown> | undefined
  /** The cluster's masters; present only on a Cluster, which is how one is told from a client. */
  readonly masters: readonly unknown[]
}
