// What TieredStore needs of its front tier: a place to keep copies of completed outcomes.
// Copies only: the primary store decides every claim, so losing the cache loses nothing.

export interface CompletedEntry {
  fingerprint: string
  result: string
  attempt: number
  completedAt: number
}

export interface CompletedResultCache {
  /** The cached copies for `ids`, in order; null for a miss. One round trip. */
  getMany(ids: readonly string[]): Promise<(CompletedEntry | null)[]>
  /** Keep copies, each for at most its `ttlMs`. One round trip. */
  putMany(entries: readonly { id: string; entry: CompletedEntry; ttlMs: number }[]): Promise<void>
  delete(id: string): Promise<void>
  close(): Promise<void>
}
