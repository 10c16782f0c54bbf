// The Lua scripts behind RedisStore: every operation is one script, atomic on the server and one
// round trip. Scripts read the clock with TIME (Redis 7 replicates script effects, so TIME is
// allowed) and let Redis expire keys natively: a key that is gone is an absent record.
//
// A record is one string value, packed, in one of three forms:
//
//   q<leaseMs>,<keepMs>,<fingerprint length>,<fingerprint><token>              a claim made by SET NX
//   p<attempt>,<createdAt>,<updatedAt>,<leaseUntil>,<fingerprint length>,<fingerprint><token>
//   c<attempt>,<createdAt>,<updatedAt>,,<fingerprint length>,<fingerprint><result>
//
//   q30000,86400000,43,kq3H…E1g0b6f1c2e-…                                   claimed, attempt 1
//   p2,1717000000123,1717000031000,1717000061000,43,kq3H…E1g5d0e…           taken over: attempt 2
//   c1,1717000000123,1717000000456,,43,kq3H…E1g{"id":"ch_3PqK9x",…}          completed: tail = result
//
// A new key is claimed without a script: `SET key q… PX keepMs NX GET` creates the claim, or
// answers the existing record in the same round trip (see redis-store.ts). That command cannot
// read Redis' clock, so a `q` claim holds durations, not times: Redis set its expiry to its own
// now + keepMs (keepMs = max(ttl, lease)), so the scripts read createdAt = PEXPIRETIME - keepMs
// and leaseUntil = createdAt + leaseMs, all on Redis' clock. Every later write (takeover, extend,
// complete) stores times (`p`, `c`), read with TIME. Times are epoch ms by Redis' clock, with one
// exception: a claim of attempt 1 completed by the process that made it is replaced by a `c`
// record built in that process (COMPLETE_KNOWN, redis-known-claims.ts), whose createdAt is the
// claim's as the process knew it and whose updatedAt is the process's own clock: parsing the claim
// and formatting times in Lua made the completion cost Redis about twice as much. Expiry
// (retention, leases) is always by Redis' clock.
//
// The fingerprint is length-prefixed (in bytes), so the tail may hold any bytes. A string costs
// its length plus a fixed overhead, where a hash turns into a hashtable (about 600 bytes) as soon
// as one value passes hash-max-listpack-value (64 bytes by default). The record's expiry is the
// key's own: max(ttl, lease) from the claim, ttl from completion.

import { createHash } from 'node:crypto'

export interface RedisScript {
  readonly source: string
  readonly sha: string
}

/** A script made of the helper functions it uses (each is defined at every run, so only those) and a body. */
function script(helpers: readonly string[], body: string): RedisScript {
  const source = `${helpers.map((h) => h.trim()).join('\n')}\n${body.trim()}\n`
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
`

// Numbers go into records through string.format('%d'): tostring would print 15 digits and more
// in exponent form.

const READ = `
-- A record's fields, whichever its form: state ('p' or 'c'), attempt, createdAt, updatedAt,
-- leaseUntil (nil when completed), fingerprint, tail (token or result). A 'q' claim is in
-- progress, attempt 1, its times read from the key's expiry (see the top of redis-scripts.ts).
local function read(key, v)
  if string.byte(v, 1) == 113 then
    local lm, km, n, at = string.match(v, '^q(%d+),(%d+),(%d+),()')
    local c = redis.call('PEXPIRETIME', key) - tonumber(km)
    n = tonumber(n)
    return 'p', 1, c, c, c + tonumber(lm), string.sub(v, at, at + n - 1), string.sub(v, at + n)
  end
  local s, a, c, u, l, n, at = string.match(v, '^([pc])(%d+),(%d+),(%d+),(%d*),(%d+),()')
  n = tonumber(n)
  return s, tonumber(a), tonumber(c), tonumber(u), tonumber(l), string.sub(v, at, at + n - 1), string.sub(v, at + n)
end
`

const OWNER = `
-- If token owns the claim (the key exists, so it has not expired; in progress; same token):
-- the record's attempt, createdAt and fingerprint. Otherwise nil.
local function owned(key, token)
  local v = redis.call('GET', key)
  if not v then return nil end
  local s, a, c, u, l, f, tail = read(key, v)
  if s ~= 'p' or tail ~= token then return nil end
  return a, c, f
end
`

const BEGIN_FN = `
-- begin, one record. Replies {0, leaseUntil, attempt} acquired (attempt > 1: a takeover),
-- {1, leaseUntil, attempt, retryAfterMs} in progress, {3, state} mismatch, and for a completed
-- record the record itself (a string), from which the caller reads result, attempt, completedAt.
-- now may be nil: TIME is read only on the paths that need it (never for a replay).
local function begin(key, fp, token, lease_ms, ttl_ms, now)
  local v = redis.call('GET', key)
  if v then
    local s, a, c, u, l, f = read(key, v)
    -- Another payload under the same key, whatever the state: misuse. Read-only.
    if f ~= fp then return {3, s} end
    -- Completed: replay. Read-only.
    if s == 'c' then return v end
    now = now or now_ms()
    -- In progress, lease live: the holder keeps it. Read-only.
    if l > now then return {1, l, a, l - now} end
    -- In progress, lease lapsed: take over with the caller's token, attempt + 1. The expiry only
    -- grows (GT), so retention never ends before the new lease.
    a = a + 1
    local lease = now + lease_ms
    redis.call('SET', key, string.format('p%d,%d,%d,%d,%d,', a, c, now, lease, #fp) .. fp .. token, 'KEEPTTL')
    redis.call('PEXPIREAT', key, now + math.max(ttl_ms, lease_ms), 'GT')
    return {0, lease, a}
  end
  -- No record (an expired one is already gone): create it, attempt 1, kept max(ttl, lease).
  now = now or now_ms()
  local lease = now + lease_ms
  redis.call('SET', key, string.format('p1,%d,%d,%d,%d,', now, now, lease, #fp) .. fp .. token,
    'PXAT', now + math.max(ttl_ms, lease_ms))
  return {0, lease, 1}
end
`

const COMPLETE_FN = `
-- complete, one record. 1 done; 0 when token does not own the claim (absent, expired, completed,
-- taken over): nothing changes. The completed record keeps no token or lease and lives ttl.
local function complete(key, token, result, ttl_ms, now)
  local a, c, fp = owned(key, token)
  if not a then return 0 end
  redis.call('SET', key, string.format('c%d,%d,%d,,%d,', a, c, now, #fp) .. fp .. result, 'PXAT', now + ttl_ms)
  return 1
end
`

/** KEYS[1]; ARGV: fingerprint, token, leaseMs, ttlMs. */
export const BEGIN = script(
  [NOW, READ, BEGIN_FN],
  `
return begin(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), nil)
`,
)

/**
 * KEYS: the records; ARGV: leaseMs, ttlMs, then fingerprint and token per key. One reply per key,
 * in order; a key named twice sees the first item's write (sequential begins).
 */
export const BEGIN_MANY = script(
  [NOW, READ, BEGIN_FN],
  `
local lease_ms, ttl_ms, now = tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms()
local out = {}
for i = 1, #KEYS do
  out[i] = begin(KEYS[i], ARGV[2 * i + 1], ARGV[2 * i + 2], lease_ms, ttl_ms, now)
end
return out
`,
)

/** KEYS[1]; ARGV: token, result, ttlMs. Replies 1, or 0 for LEASE_LOST. */
export const COMPLETE = script(
  [NOW, READ, OWNER, COMPLETE_FN],
  `
return complete(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), now_ms())
`,
)

const COMPLETE_KNOWN_FN = `
-- complete, for a claim this process made and remembers (redis-known-claims.ts): the owner check
-- of complete without reading the record's fields (in progress, 'q' or 'p', and ending with the
-- token: a claim's tail is its token), then the completed record the caller built, kept ttl.
-- 1 done, 0 LEASE_LOST. No parsing or number formatting on Redis.
local function complete_known(key, token, record, ttl_ms)
  local v = redis.call('GET', key)
  local state = v and string.byte(v, 1)
  if (state ~= 113 and state ~= 112) or string.sub(v, -#token) ~= token then return 0 end
  redis.call('SET', key, record, 'PX', ttl_ms)
  return 1
end
`

/** KEYS[1]; ARGV: token, the completed record built by the caller, ttlMs. Replies 1, or 0 for LEASE_LOST. */
export const COMPLETE_KNOWN = script(
  [COMPLETE_KNOWN_FN],
  `
return complete_known(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
`,
)

/**
 * KEYS: the records; ARGV: ttlMs, a flag string with one character per key, then token and a
 * second argument per key: '0' the result; '1' '' (the result is over the size limit and was not
 * sent); '2' the completed record built by the caller (COMPLETE_KNOWN's). Replies per key:
 * 1 completed, 0 lease lost, 2 too large (only to the owner; nothing changes).
 */
export const COMPLETE_MANY = script(
  [NOW, READ, OWNER, COMPLETE_FN, COMPLETE_KNOWN_FN],
  `
local ttl_ms, flags, now = tonumber(ARGV[1]), ARGV[2], nil
local out = {}
for i = 1, #KEYS do
  local flag, key, token, second = string.byte(flags, i), KEYS[i], ARGV[2 * i + 1], ARGV[2 * i + 2]
  if flag == 50 then
    out[i] = complete_known(key, token, second, ttl_ms)
  elseif flag == 49 then
    out[i] = owned(key, token) and 2 or 0
  else
    now = now or now_ms()
    out[i] = complete(key, token, second, ttl_ms, now)
  end
end
return out
`,
)

/** KEYS[1]; ARGV: token. The owner deletes the record (1); anyone else changes nothing (0). */
export const RELEASE = script(
  [READ, OWNER],
  `
if not owned(KEYS[1], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`,
)

/**
 * KEYS[1]; ARGV: token, leaseMs. The owner's lease becomes now + leaseMs and the key's expiry
 * grows to at least that (GT); replies the new deadline, or 0 when token does not own the claim.
 */
export const EXTEND = script(
  [NOW, READ, OWNER],
  `
local a, c, f = owned(KEYS[1], ARGV[1])
if not a then return 0 end
local now = now_ms()
local lease = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('p%d,%d,%d,%d,%d,', a, c, now, lease, #f) .. f .. ARGV[1], 'KEEPTTL')
redis.call('PEXPIREAT', KEYS[1], lease, 'GT')
return lease
`,
)

/**
 * KEYS[1]. Nil when absent (or expired); else state, attempt, createdAt, updatedAt, leaseUntil
 * ('' when completed), fingerprint, tail (token or result) and the key's expiry (PEXPIRETIME).
 */
export const GET = script(
  [READ],
  `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local s, a, c, u, l, f, tail = read(KEYS[1], v)
return {s, a, c, u, l or '', f, tail, redis.call('PEXPIRETIME', KEYS[1])}
`,
)
