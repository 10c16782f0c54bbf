// Section "peers": Idem's RedisStore run() against Powertools idempotency and @node-idempotency/core
// on the same Redis, new keys and duplicates, with Idem on ioredis and on each peer's own client
// (@redis/client 6 as Powertools, redis 4 as @node-idempotency/core), and each library against the
// raw commands through its own Redis client (so that a difference between clients is not read as
// one between libraries).

import { createClient } from '@redis/client'
import { createClient as createRedis4Client } from 'redis4'
import { fingerprintOf } from '../../src/core/fingerprint.js'
import { linkTo } from '../../src/drivers/redis-link.js'
import { Idempotency } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { PAYLOAD, produce, SCOPE, VALUE } from '../lib/fixtures.js'
import type { Workload } from '../lib/measure.js'
import { measureBoth, printTable, type Row } from './compare.js'
import { costTable } from './cost.js'
import { redisGetFloor, redisNewFloor, redisRecordValues } from './floors.js'
import { nodeIdempotency, type Peer, powertools, powertoolsValidationDuplicate, verifyPeer } from './peers.js'
import { type BenchRun, SERVERS, SHARED_TTL_MS } from './run.js'
import { type Servers, versionOf } from './servers.js'

type Name =
  | 'idemNew'
  | 'ptNew'
  | 'niNew'
  | 'nrNew'
  | 'r4New'
  | 'idemDup'
  | 'nrDup'
  | 'r4Dup'
  | 'ptDup'
  | 'niDup'
  | 'ioNew'
  | 'v6New'
  | 'v4New'
  | 'ioGet'
  | 'v6Get'
  | 'v4Get'
  | 'ioLinkGet'

const ORDER: readonly Name[] = [
  'idemNew',
  'ptNew',
  'niNew',
  'nrNew',
  'r4New',
  'ioNew',
  'v6New',
  'v4New',
  'idemDup',
  'ptDup',
  'niDup',
  'nrDup',
  'r4Dup',
  'ioGet',
  'v6Get',
  'v4Get',
  'ioLinkGet',
]

const AT_64 = [64]
const PEER_GOALS: Row<Name>[] = [
  { label: 'new key: Idem vs Powertools', ours: 'idemNew', floor: 'ptNew', goal: 3, goalAt: AT_64 },
  { label: 'new key: Idem vs @node-idempotency/core', ours: 'idemNew', floor: 'niNew', goal: 1.3, goalAt: AT_64 },
  { label: 'duplicate: Idem vs Powertools', ours: 'idemDup', floor: 'ptDup', goal: 4, goalAt: AT_64 },
  { label: 'duplicate: Idem vs @node-idempotency/core', ours: 'idemDup', floor: 'niDup', goal: 1.5, goalAt: AT_64 },
]
/** A peer goal with the client held constant: Idem on the peer's own client. */
function sameClient(label: string, ours: Name, floor: Name, goal: number): Row<Name> {
  const named = `${label} (same client)`
  return { label: named, ours, floor, goal, goalAt: AT_64, goalText: `${named} >= ${goal}x` }
}
const VS_PEERS: Row<Name>[] = [
  ...PEER_GOALS.map((row) => ({ ...row, goalText: `${row.label} >= ${row.goal}x` })),
  // The same goals with the client held constant: Idem on each peer's own client, so that the
  // ratio is between libraries only (the clients differ by up to 2.5x here: the rows below).
  sameClient('new key: Idem on @redis/client 6 vs Powertools', 'nrNew', 'ptNew', 3),
  sameClient('new key: Idem on redis 4 vs @node-idempotency/core', 'r4New', 'niNew', 1.3),
  sameClient('duplicate: Idem on @redis/client 6 vs Powertools', 'nrDup', 'ptDup', 4),
  sameClient('duplicate: Idem on redis 4 vs @node-idempotency/core', 'r4Dup', 'niDup', 1.5),
  // Informative: the other pairings.
  { label: 'new key: Idem on @redis/client 6 vs @node-idempotency/core', ours: 'nrNew', floor: 'niNew' },
  { label: 'duplicate: Idem on @redis/client 6 vs @node-idempotency/core', ours: 'nrDup', floor: 'niDup' },
  { label: 'new key: Idem on redis 4 vs Powertools', ours: 'r4New', floor: 'ptNew' },
  { label: 'duplicate: Idem on redis 4 vs Powertools', ours: 'r4Dup', floor: 'ptDup' },
]

const VS_OWN_CLIENT: readonly Row<Name>[] = [
  { label: 'Idem new key vs SET NX + SET (ioredis)', ours: 'idemNew', floor: 'ioNew' },
  {
    label: 'Idem on node-redis new key vs SET NX + SET (@redis/client 6)',
    ours: 'nrNew',
    floor: 'v6New',
    goal: 0.9,
    goalText: 'Idem on node-redis new keys >= 0.90 of the node-redis SET NX + SET floor',
    goalAt: AT_64,
  },
  { label: 'Powertools new key vs SET NX + SET (@redis/client 6)', ours: 'ptNew', floor: 'v6New' },
  { label: 'node-idem new key vs SET NX + SET (redis 4)', ours: 'niNew', floor: 'v4New' },
  { label: 'Idem on redis 4 new key vs SET NX + SET (redis 4)', ours: 'r4New', floor: 'v4New' },
  { label: 'Idem duplicate vs GET (ioredis)', ours: 'idemDup', floor: 'ioGet' },
  {
    label: 'Idem on node-redis duplicate vs GET (@redis/client 6)',
    ours: 'nrDup',
    floor: 'v6Get',
    goal: 0.9,
    goalText: 'Idem on node-redis duplicates >= 0.90 of the node-redis GET floor',
    goalAt: AT_64,
  },
  { label: 'Powertools duplicate vs GET (@redis/client 6)', ours: 'ptDup', floor: 'v6Get' },
  { label: 'node-idem duplicate vs GET (redis 4)', ours: 'niDup', floor: 'v4Get' },
  { label: 'Idem on redis 4 duplicate vs GET (redis 4)', ours: 'r4Dup', floor: 'v4Get' },
  { label: 'clients: ioredis vs @redis/client 6, SET NX + SET', ours: 'ioNew', floor: 'v6New' },
  { label: 'clients: ioredis vs redis 4, SET NX + SET', ours: 'ioNew', floor: 'v4New' },
  { label: 'clients: ioredis vs @redis/client 6, GET', ours: 'ioGet', floor: 'v6Get' },
  { label: 'clients: ioredis vs redis 4, GET', ours: 'ioGet', floor: 'v4Get' },
  // What the store's link adds to ioredis: one socket write per tick (src/drivers/redis-link.ts).
  {
    label: "clients: ioredis through Idem's link (one write per tick) vs plain ioredis, GET",
    ours: 'ioLinkGet',
    floor: 'ioGet',
  },
]

export async function peersSection(run: BenchRun, servers: Servers): Promise<void> {
  const redis = servers.redis()
  const url = `redis://${SERVERS.redis.host}:${SERVERS.redis.port}`
  const P = `${run.redisPrefix}:peers`
  const ttl = SHARED_TTL_MS
  const dupKeys = Array.from({ length: run.settings.replayKeys }, (_, i) => `d${i}`)
  const cycle = (list: readonly string[]) => {
    let n = 0
    return () => list[n++ % list.length] as string
  }
  const replayFn = async (): Promise<never> => {
    throw new Error('bench: a duplicate executed its function')
  }

  const idem = new Idempotency({ store: new RedisStore({ client: redis, prefix: `${P}:idem:` }), scope: SCOPE, ttl })
  const ours: Peer = {
    name: 'Idem',
    run: async (key, fn, payload = PAYLOAD) => (await idem.run({ key, payload }, fn)).value,
    close: async () => {},
  }
  const nodeRedis = await createClient({ url }).connect()
  run.onCleanup('node-redis client', () => nodeRedis.close())
  const nrIdem = new Idempotency({
    store: new RedisStore({ client: nodeRedis, prefix: `${P}:nr:` }),
    scope: SCOPE,
    ttl,
  })
  const oursNodeRedis: Peer = {
    name: 'Idem on node-redis',
    run: async (key, fn, payload = PAYLOAD) => (await nrIdem.run({ key, payload }, fn)).value,
    close: async () => {},
  }
  // redis 4 (`redis@4`, @redis/client 1.6), the client @node-idempotency/core brings.
  const redis4 = await createRedis4Client({ url }).connect()
  run.onCleanup('redis 4 client', () => redis4.quit())
  const r4Idem = new Idempotency({
    store: new RedisStore({ client: redis4, prefix: `${P}:r4:` }),
    scope: SCOPE,
    ttl,
  })
  const oursRedis4: Peer = {
    name: 'Idem on redis 4',
    run: async (key, fn, payload = PAYLOAD) => (await r4Idem.run({ key, payload }, fn)).value,
    close: async () => {},
  }
  const pt = await powertools(url, `${P}:pt`, ttl)
  const ni = await nodeIdempotency(url, `${P}:ni`, ttl)
  run.onCleanup('peers', () => Promise.all([pt.close(), ni.close()]))

  console.log(
    `peers: @aws-lambda-powertools/idempotency ${versionOf('@aws-lambda-powertools/idempotency')} ` +
      `(CachePersistenceLayer, @redis/client ${versionOf('@redis/client')}, sha256, no local cache), ` +
      `@node-idempotency/core ${versionOf('@node-idempotency/core')} with storage-adapter-redis ` +
      `${versionOf('@node-idempotency/storage-adapter-redis')} (its own redis 4 client); ` +
      `Idem: RedisStore on ioredis ${versionOf('ioredis')}, on @redis/client ${versionOf('@redis/client')} and on redis ${versionOf('redis4')}, ` +
      'no local cache; all on the shared Redis',
  )
  process.stderr.write('  verifying that each one deduplicates\n')
  for (const peer of [ours, oursNodeRedis, oursRedis4, pt, ni]) {
    const otherPayload = await verifyPeer(peer, 'verify')
    console.log(
      `checked: ${peer.name} runs its function once per key, replays the stored value, lets 1 of 8 concurrent calls run; same key with another payload: ${otherPayload}`,
    )
  }
  const validation = await powertoolsValidationDuplicate(url, `${P}:ptv`, ttl)
  console.log(`checked: Powertools with payloadValidationJmesPath on CachePersistenceLayer, a duplicate ${validation}`)

  for (const peer of [ours, oursNodeRedis, oursRedis4, pt, ni]) {
    for (let i = 0; i < dupKeys.length; i += 64) {
      await Promise.all(dupKeys.slice(i, i + 64).map((key) => peer.run(key, produce)))
    }
  }
  const newOf = (peer: Peer, prefix: string): Workload => {
    let n = 0
    return { sampleOps: 1_000, op: () => peer.run(`${prefix}${n++}`, produce) }
  }
  const dupOf = (peer: Peer): Workload => {
    const pick = cycle(dupKeys)
    return { sampleOps: 1_000, op: () => peer.run(pick(), replayFn) }
  }
  const stored = JSON.stringify({ v: VALUE })
  const values = redisRecordValues(fingerprintOf(PAYLOAD), stored)
  const floorKeys = Array.from({ length: run.settings.replayKeys }, (_, i) => `${P}:floor:{5:bench:d${i}}`)
  for (const key of floorKeys) await redis.set(key, values.done, 'PX', ttl)
  let v6n = 0
  let v4n = 0
  const v6Get = cycle(floorKeys)
  const v4Get = cycle(floorKeys)
  const { adapter, client: v6 } = { adapter: ni.adapter, client: pt.client }
  const workloads: Record<Name, Workload> = {
    idemNew: newOf(ours, 'n'),
    ptNew: newOf(pt, 'n'),
    niNew: newOf(ni, 'n'),
    idemDup: dupOf(ours),
    nrNew: newOf(oursNodeRedis, 'n'),
    nrDup: dupOf(oursNodeRedis),
    r4New: newOf(oursRedis4, 'n'),
    r4Dup: dupOf(oursRedis4),
    ptDup: dupOf(pt),
    niDup: dupOf(ni),
    ioNew: redisNewFloor(redis, (n) => `${P}:floor:{5:bench:io${n}}`, values, ttl),
    v6New: {
      sampleOps: 1_000,
      op: async () => {
        const key = `${P}:floor:{5:bench:v6${v6n++}}`
        if ((await v6.set(key, values.claim, { PX: ttl, NX: true })) !== 'OK') throw new Error('bench: v6 claim failed')
        await v6.set(key, values.done, { PX: ttl })
      },
    },
    v4New: {
      sampleOps: 1_000,
      op: async () => {
        const key = `${P}:floor:{5:bench:v4${v4n++}}`
        if (!(await adapter.setIfNotExists(key, values.claim, { ttl }))) throw new Error('bench: v4 claim failed')
        await adapter.set(key, values.done, { ttl })
      },
    },
    ioGet: redisGetFloor(redis, cycle(floorKeys)),
    ioLinkGet: (() => {
      const link = linkTo(redis)
      const pick = cycle(floorKeys)
      return {
        sampleOps: 1_000,
        op: async () => {
          const key = pick()
          if ((await link.send(key, ['GET', key])) === null) throw new Error('bench: the linked read found nothing')
        },
      }
    })(),
    v6Get: {
      sampleOps: 1_000,
      op: async () => {
        if ((await v6.get(v6Get())) === null) throw new Error('bench: v6 read found nothing')
      },
    },
    v4Get: {
      sampleOps: 1_000,
      op: async () => {
        if ((await adapter.get(v4Get())) === undefined) throw new Error('bench: v4 read found nothing')
      },
    },
  }

  const figures = await measureBoth(run, workloads, ORDER)
  const c = run.settings.concurrency
  const cost = (label: string, name: Name) => ({ label, workload: workloads[name], redis })
  await costTable(
    `concurrency ${c}: cost per operation (one more pass of 0.5 s each, not interleaved)`,
    [
      cost('new key: Idem', 'idemNew'),
      cost('new key: Idem on node-redis', 'nrNew'),
      cost('new key: Idem on redis 4', 'r4New'),
      cost('new key: Powertools', 'ptNew'),
      cost('new key: @node-idempotency/core', 'niNew'),
      cost('new key: SET NX + SET, ioredis', 'ioNew'),
      cost('new key: SET NX + SET, @redis/client 6', 'v6New'),
      cost('new key: SET NX + SET, redis 4', 'v4New'),
      cost('duplicate: Idem', 'idemDup'),
      cost('duplicate: Idem on node-redis', 'nrDup'),
      cost('duplicate: Idem on redis 4', 'r4Dup'),
      cost('duplicate: Powertools', 'ptDup'),
      cost('duplicate: @node-idempotency/core', 'niDup'),
      cost('duplicate: GET, ioredis', 'ioGet'),
      cost('duplicate: GET, @redis/client 6', 'v6Get'),
      cost('duplicate: GET, redis 4', 'v4Get'),
    ],
    { seconds: run.settings.quick ? 0.1 : 0.5, concurrency: c, sampleScale: run.settings.sampleScale },
  )
  for (const [concurrency, figs] of figures) {
    printTable(
      run,
      `concurrency ${concurrency}: Idem against each peer (ratio = Idem / peer)`,
      VS_PEERS,
      figs,
      concurrency,
      {
        ours: 'Idem ops/s',
        floor: 'peer ops/s',
      },
    )
    printTable(
      run,
      `concurrency ${concurrency}: each library against the raw commands through its own client`,
      VS_OWN_CLIENT,
      figs,
      concurrency,
      { ours: 'library ops/s', floor: 'raw ops/s' },
    )
  }
}
