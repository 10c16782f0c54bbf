// The completions of one `runMany` batch, gathered into completeMany calls: those requested while
// a call is being prepared or is in flight go together in the next. Whatever does not complete
// that way (a lone item, a lost lease, a store error) goes through `completeOutcome`, exactly as
// in `run`.

import type { CompleteItem } from '../contract/types.js'
import { type Complete, completeOutcome } from './execute.js'
import type { Pipeline, Prepared } from './pipeline.js'

interface Pending {
  p: Prepared
  token: string
  stored: string
  value: unknown
  leaseDeadline: number
  resolve(failedOpen: boolean): void
  reject(error: unknown): void
}

export class CompletionBatch {
  readonly #core: Pipeline
  #queue: Pending[] = []
  #busy = false

  constructor(core: Pipeline) {
    this.#core = core
  }

  readonly complete: Complete = (_core, p, token, stored, value, _ranUntil, leaseDeadline) =>
    new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ p, token, stored, value, leaseDeadline, resolve, reject })
      if (!this.#busy) {
        this.#busy = true
        // Let the handlers that finish in the same turn join this call.
        setImmediate(() => void this.#flush())
      }
    })

  async #flush(): Promise<void> {
    const queued = this.#queue
    this.#queue = []
    try {
      const ttlMs = (queued[0] as Pending).p.policy.ttlMs
      if (queued.every((item) => item.p.policy.ttlMs === ttlMs)) {
        await this.#completeMany(ttlMs, queued)
      } else {
        // completeMany takes one ttl: items that differ in it are completed in separate calls.
        const byTtl = new Map<number, Pending[]>()
        for (const item of queued) {
          const list = byTtl.get(item.p.policy.ttlMs)
          if (list === undefined) byTtl.set(item.p.policy.ttlMs, [item])
          else list.push(item)
        }
        await Promise.all([...byTtl].map(([ttl, items]) => this.#completeMany(ttl, items)))
      }
    } finally {
      if (this.#queue.length > 0) setImmediate(() => void this.#flush())
      else this.#busy = false
    }
  }

  async #completeMany(ttlMs: number, items: Pending[]): Promise<void> {
    const core = this.#core
    let outcomes: string[] | undefined
    if (items.length > 1) {
      const batch: CompleteItem[] = []
      for (const { p, token, stored } of items) batch.push({ id: p.base.id, token, result: stored })
      outcomes = await core.store.completeMany(batch, ttlMs).catch(() => undefined)
    }
    let rest: Promise<void>[] | undefined
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Pending
      if (outcomes?.[i] === 'completed') {
        core.cache?.set(item.p.base.id, item.p.fingerprint, item.stored, ttlMs, Date.now())
        item.resolve(false)
        continue
      }
      rest ??= []
      rest.push(
        completeOutcome(core, item.p, item.token, item.stored, item.value, 0, item.leaseDeadline).then(
          item.resolve,
          (error: unknown) => item.reject(error ?? new Error('completion failed')),
        ),
      )
    }
    if (rest !== undefined) await Promise.all(rest)
  }
}
