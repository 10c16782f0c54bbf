// The completions of one tick, sent as one script. Each `complete` is a Lua script, and Redis
// spends more on starting a script than on the few commands inside it; concurrent run()s complete
// in the same tick (their replies arrive in one socket read), so merging them into one
// COMPLETE_MANY call per tick (per retention, per Cluster slot) saves Redis most of that start-up
// cost. A lone completion goes at the end of its tick as the single-key script: nothing waits for
// a timer or for other calls.

import { leaseLost } from '../../contract/transitions.js'

interface Pending {
  id: string
  token: string
  result: string
  resolve: () => void
  reject: (error: unknown) => void
}

/** How a flush sends its items: one item, or many sharing a retention. Replies 1 per completed item. */
export interface CompletionSender {
  one(id: string, token: string, result: string, ttlMs: number): Promise<unknown>
  many(items: readonly { id: string; token: string; result: string }[], ttlMs: number): Promise<unknown[]>
}

export class TickCompletions {
  readonly #send: CompletionSender
  /** Items waiting for the end of this tick, by retention. */
  #pending = new Map<number, Pending[]>()
  #scheduled = false

  constructor(send: CompletionSender) {
    this.#send = send
  }

  /** Resolves once the record is completed; rejects LEASE_LOST, or as the store failed. */
  complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const group = this.#pending.get(ttlMs)
      if (group === undefined) this.#pending.set(ttlMs, [{ id, token, result, resolve, reject }])
      else group.push({ id, token, result, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        process.nextTick(flush, this)
      }
    })
  }

  /** Sends what is pending now (a closing store calls it so that nothing is left behind). */
  flush(): void {
    this.#scheduled = false
    const groups = this.#pending
    if (groups.size === 0) return
    this.#pending = new Map()
    for (const [ttlMs, items] of groups) {
      if (items.length === 1) {
        const item = items[0] as Pending
        this.#send.one(item.id, item.token, item.result, ttlMs).then((reply) => settle(item, reply), item.reject)
      } else {
        this.#send.many(items, ttlMs).then(
          (replies) => {
            items.forEach((item, i) => {
              settle(item, replies[i])
            })
          },
          (error: unknown) => {
            for (const item of items) item.reject(error)
          },
        )
      }
    }
  }
}

function flush(batcher: TickCompletions): void {
  batcher.flush()
}

function settle(item: Pending, reply: unknown): void {
  if (Number(reply) === 1) item.resolve()
  else item.reject(leaseLost(item.id, 'complete'))
}
