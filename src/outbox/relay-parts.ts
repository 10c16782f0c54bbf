// The relay's smaller pieces: a claimed row and its decoding into an OutgoingMessage, and the
// polling loop behind start()/stop() (a wait that wake() and stop() cut short).

import type { OutgoingMessage } from '../producer/types.js'

export interface ClaimedRow {
  /** The primary key as the driver returned it (a string for PostgreSQL's bigint). */
  seq: unknown
  id: string
  destination: string | null
  payload: string
  headers: string | null
  /** The attempt this claim is: the row's attempts before it, plus one. */
  attempt: number
}

export function toClaimedRow(row: Record<string, unknown>): ClaimedRow {
  return {
    seq: row.seq,
    id: String(row.id),
    destination: row.destination === null || row.destination === undefined ? null : String(row.destination),
    payload: String(row.payload),
    headers: row.headers === null || row.headers === undefined ? null : String(row.headers),
    attempt: Number(row.attempts) + 1,
  }
}

/** The message to publish; throws for a row whose JSON was damaged outside the outbox. */
export function decodeRow(row: ClaimedRow): OutgoingMessage {
  const payload: unknown = JSON.parse(row.payload)
  let headers: Record<string, string> | undefined
  if (row.headers !== null) {
    const parsed: unknown = JSON.parse(row.headers)
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new TypeError(`The headers of message ${row.id} are not an object`)
    }
    headers = parsed as Record<string, string>
  }
  return {
    id: row.id,
    payload,
    ...(row.destination === null ? {} : { destination: row.destination }),
    ...(headers === undefined ? {} : { headers }),
  }
}

/** An error as the text kept on the row, capped so a huge message cannot bloat the table. */
export function errorText(error: unknown): string {
  const text =
    error instanceof Error ? `${error.name}: ${error.message}` : typeof error === 'string' ? error : String(error)
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text
}

export interface LoopHooks {
  /** One batch; true when it was full, so the next should follow without waiting. */
  runOnce(): Promise<boolean>
  sweep: { everyMs: number; run(): Promise<void> } | null
  onError(error: unknown, stage: 'claim' | 'sweep'): void
}

export class RelayLoop {
  readonly #pollMs: number
  readonly #hooks: LoopHooks
  #done: Promise<void> | null = null
  #stopping = false
  #woken = false
  #wakeUp: (() => void) | null = null

  constructor(pollMs: number, hooks: LoopHooks) {
    this.#pollMs = pollMs
    this.#hooks = hooks
  }

  get running(): boolean {
    return this.#done !== null
  }

  get stopping(): boolean {
    return this.#stopping
  }

  start(): void {
    if (this.#done !== null) return
    this.#stopping = false
    this.#done = this.#run()
  }

  wake(): void {
    this.#woken = true
    this.#wakeUp?.()
  }

  async stop(): Promise<void> {
    this.#stopping = true
    this.#wakeUp?.()
    await this.#done
    this.#done = null
  }

  async #run(): Promise<void> {
    let nextSweep = 0
    while (!this.#stopping) {
      let full = false
      try {
        full = await this.#hooks.runOnce()
      } catch (error) {
        this.#hooks.onError(error, 'claim')
      }
      const { sweep } = this.#hooks
      if (sweep !== null && !this.#stopping && Date.now() >= nextSweep) {
        nextSweep = Date.now() + sweep.everyMs
        try {
          await sweep.run()
        } catch (error) {
          this.#hooks.onError(error, 'sweep')
        }
      }
      if (!full) await this.#sleep()
    }
  }

  #sleep(): Promise<void> {
    if (this.#stopping || this.#woken) {
      this.#woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#wakeUp = null
        this.#woken = false
        resolve()
      }
      const timer = setTimeout(done, this.#pollMs)
      this.#wakeUp = done
    })
  }
}
