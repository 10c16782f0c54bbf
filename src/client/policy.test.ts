// The shared retry policy and the key memory, without a network: what is retried, how long it
// waits, and which key is refused.

import { describe, expect, it } from 'vitest'
import { IdempotencyKeyReusedError, isKeyReusedProblem } from './errors.js'
import { fingerprint, KeyMemory } from './keys.js'
import { parseRetryAfter, type RetryEvent, RetryPolicy, randomKey } from './policy.js'

describe('RetryPolicy', () => {
  it('covers POST and PATCH by default, any case', () => {
    const policy = new RetryPolicy()
    expect(['POST', 'patch', 'GET', 'PUT', 'DELETE'].map((m) => policy.covers(m))).toEqual([
      true,
      true,
      false,
      false,
      false,
    ])
    expect(new RetryPolicy({ methods: ['put'] }).covers('PUT')).toBe(true)
  })

  it('retries 409 only with Retry-After, 429 and 5xx, never 400 or 422', () => {
    const policy = new RetryPolicy({ baseDelayMs: 100, random: () => 0.5 })
    const op = () => ({ ...policy.begin('k'), attempts: 1 })
    expect(policy.afterStatus(op(), 409, '2')).toBe(2000)
    expect(policy.afterStatus(op(), 409, null)).toBeUndefined()
    expect(policy.afterStatus(op(), 429, null)).toBe(50)
    for (const status of [500, 502, 503, 504]) expect(policy.afterStatus(op(), status, null)).toBe(50)
    for (const status of [200, 201, 400, 404, 422, 501]) expect(policy.afterStatus(op(), status, null)).toBeUndefined()
    expect(new RetryPolicy({ retryStatuses: [501] }).afterStatus(op(), 501, null)).toBeDefined()
  })

  it('backs off exponentially with full jitter, capped', () => {
    const high = new RetryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 })
    expect([1, 2, 3, 4, 5, 6].map((n) => high.backoff(n))).toEqual([99, 199, 399, 799, 999, 999])
    const low = new RetryPolicy({ random: () => 0 })
    expect(low.backoff(3)).toBe(0)
  })

  it('stops after maxAttempts and before the deadline, and tells onRetry each wait', () => {
    const events: RetryEvent[] = []
    const policy = new RetryPolicy({ maxAttempts: 2, deadlineMs: 1000, onRetry: (e) => events.push(e) })
    const op = policy.begin('k')
    op.attempts = 1
    expect(policy.afterError(op, new Error('reset'))).toBeDefined()
    op.attempts = 2
    expect(policy.afterError(op, new Error('reset'))).toBeUndefined()
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ key: 'k', attempt: 1 })
    // A Retry-After beyond the deadline: keep the answer rather than wait for nothing.
    const late = policy.begin('late')
    late.attempts = 1
    expect(policy.afterStatus(late, 503, '5')).toBeUndefined()
    expect(policy.giveUp(late, new Error('x')).reason).toBe('deadline')
    expect(policy.giveUp(op, new Error('x')).reason).toBe('attempts-exhausted')
  })

  it('refuses nonsense options', () => {
    expect(() => new RetryPolicy({ maxAttempts: 0 })).toThrow(RangeError)
    expect(() => new RetryPolicy({ baseDelayMs: -1 })).toThrow(RangeError)
    expect(() => new RetryPolicy({ deadlineMs: Number.NaN })).toThrow(RangeError)
  })
})

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    expect(parseRetryAfter(' 0 ')).toBe(0)
    const inTwo = new Date(Date.now() + 2500).toUTCString()
    expect(parseRetryAfter(inTwo)).toBeGreaterThan(1000)
    expect(parseRetryAfter(inTwo)).toBeLessThanOrEqual(2500)
    expect(parseRetryAfter(new Date(0).toUTCString())).toBe(0)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter(null)).toBeUndefined()
  })
})

describe('keys', () => {
  it('makes v4 UUIDs', () => {
    expect(randomKey()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('fingerprints method, URL and body', async () => {
    const body = new TextEncoder().encode('{"a":1}')
    const a = await fingerprint('post', 'http://x/a', body)
    expect(a).toBe(await fingerprint('POST', 'http://x/a', body))
    expect(a).not.toBe(await fingerprint('POST', 'http://x/b', body))
    expect(a).not.toBe(await fingerprint('POST', 'http://x/a', new TextEncoder().encode('{"a":2}')))
    expect(a).not.toBe(await fingerprint('POST', 'http://x/a', null))
  })

  it('refuses a key bound to another fingerprint, and forgets the least recently used', () => {
    const memory = new KeyMemory(2)
    memory.claim('a', '1')
    memory.claim('a', '1')
    expect(() => memory.claim('a', '2')).toThrow(IdempotencyKeyReusedError)
    memory.claim('b', '1')
    memory.claim('a', '1') // a is now the most recent
    memory.claim('c', '1') // evicts b
    expect(memory.size).toBe(2)
    expect(() => memory.claim('a', '2')).toThrow(IdempotencyKeyReusedError)
    expect(() => memory.claim('b', '2')).not.toThrow()
  })

  it('recognises the key-reused problem under any type base', () => {
    expect(isKeyReusedProblem({ type: 'urn:idem:problem:key-reused' })).toBe(true)
    expect(isKeyReusedProblem({ type: 'https://errors.example/key-reused' })).toBe(true)
    expect(isKeyReusedProblem({ type: 'urn:shop:not-key-reused-at-all' })).toBe(false)
    expect(isKeyReusedProblem({ type: 'urn:shop:invalid-amount' })).toBe(false)
    expect(isKeyReusedProblem('key-reused')).toBe(false)
  })
})
