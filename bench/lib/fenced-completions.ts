// The fenced completion at its least, for the fenced floors (bench/http/floor.ts,
// bench/stores/floors.ts): a record replaces its claim only while the claim still ends with the
// caller's owner token, checked and written by one script; the completions of one tick go in one
// script call, as RedisStore batches its own.

import type { Redis } from 'ioredis'

/** KEYS: the records; ARGV: ttl, then token and value per key. Replies 1 (stored) or 0 (not the owner's claim) per key. */
const FENCED_COMPLETE = `
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  local token = ARGV[2 * i]
  if v and string.byte(v, 1) == 112 and string.sub(v, -#token) == token then
    redis.call('SET', KEYS[i], ARGV[2 * i + 1], 'PX', ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`

type Scripted = Redis & { idemBenchFencedComplete(...args: Array<string | number>): Promise<number[]> }

interface Completion {
  key: string
  token: string
  value: string
  resolve: (stored: boolean) => void
  reject: (error: unknown) => void
}

/** Claims are `p<anything><token>`: the completion checks the first byte and the tail. */
export class FencedCompletions {
  readonly #redis: Scripted
  readonly #ttlMs: number
  #queue: Completion[] = []

  constructor(redis: Redis, ttlMs: number) {
    redis.defineCommand('idemBenchFencedComplete', { lua: FENCED_COMPLETE })
    this.#redis = redis as Scripted
    this.#ttlMs = ttlMs
  }

  /** True once stored; false when the claim is not (or no longer) `token`'s. */
  complete(key: string, token: string, value: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.#queue.length === 0) process.nextTick(flush, this)
      this.#queue.push({ key, token, value, resolve, reject })
    })
  }

  send(): void {
    const batch = this.#queue
    this.#queue = []
    const args: Array<string | number> = [batch.length]
    for (const c of batch) args.push(c.key)
    args.push(this.#ttlMs)
    for (const c of batch) args.push(c.token, c.value)
    this.#redis.idemBenchFencedComplete(...args).then(
      (replies) => {
        batch.forEach((c, i) => {
          c.resolve(replies[i] === 1)
        })
      },
      (error: unknown) => {
        for (const c of batch) c.reject(error)
      },
    )
  }
}

function flush(completions: FencedCompletions): void {
  completions.send()
}
