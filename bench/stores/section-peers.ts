// Section "peers": Idem's RedisStore run() against Powertools idempotency and @node-idempotency/core
// on the same Redis, new keys and duplicates, and each library against the raw commands through its
// own Redis client (so that a difference between clients is not read as one between libraries).

import { Redis } from 'ioredis'
import { fingerprintOf } from '../../src/core/fingerprint.js'
import { Idempotency } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { PAYLOAD, produce, SCOPE, VALUE } from '../lib/fixtures.js'
import type { Workload } from '../lib/measure.js'
import { measureBoth, printTable, type Row } from './compare.js'
import { costTable } from './cost.js'
import { redisGetFloor, redisNewFloor, redisRecordValues } from './floors.js'
import { nodeIdempotency, type Peer, powertools, powertoolsValidationDuplicate, verifyPeer } from './peers.js'
import { TickBatchingStore } from './prototypes.js'
import { type BenchRun, SERVERS, SHARED_TTL_MS } from './run.js'
import { type Servers, versionOf } from './servers.js'

type Name =
  | 'idemNew'
  | 'ptNew'
  | 'niNew'
  | 'idemAutoNew'
  | 'idemTickNew'
  | 'idemDup'
  | 'idemTickDup'
  | 'idemAutoDup'
  | 'ptDup'
  | 'niDup'
  | 'ioNew'
  | 'v6New'
  | 'v4New'
  | 'ioGet'
  | 'ioAutoNew'
  | 'ioAutoGet'
  | 'v6Get'
  | 'v4Get'

const ORDER: readonly Name[] = [
  'idemNew',
  'ptNew',
  'niNew',
  'idemAutoNew',
  'idemTickNew',
  'ioNew',
  'v6New',
  'v4New',
  'ioAutoNew',
  'idemDup',
  'ptDup',
  'niDup',
  'idemAutoDup',
  'idemTickDup',
  'ioGet',
  'v6Get',
  'v4Get',
  'ioAutoGet',
]

const AT_64 = [64]
const PEER_GOALS: Row<Name>[] = [
  { label: 'new key: Idem vs Powertools', ours: 'idemNew', floor: 'ptNew', goal: 2.5, goalAt: AT_64 },
  { label: 'new key: Idem vs @node-idempotency/core', ours: 'idemNew', floor: 'niNew', goal: 1.2, goalAt: AT_64 },
  { label: 'duplicate: Idem vs Powertools', ours: 'idemDup', floor: 'ptDup', goal: 2.5, goalAt: AT_64 },
  { label: 'duplicate: Idem vs @node-idempotency/core', ours: 'idemDup', floor: 'niDup', goal: 1.3, goalAt: AT_64 },
]
const VS_PEERS: Row<Name>[] = [
  ...PEER_GOALS.map((row) => ({ ...row, goalText: `${row.label} >= ${row.goal}x` })),
  // Informative: Idem on an ioredis client with enableAutoPipelining (commands of one tick share a write).
  { label: 'new key: Idem (ioredis autopipelining) vs Powertools', ours: 'idemAutoNew', floor: 'ptNew' },
  { label: 'new key: Idem (ioredis autopipelining) vs @node-idempotency/core', ours: 'idemAutoNew', floor: 'niNew' },
  { label: 'duplicate: Idem (ioredis autopipelining) vs Powertools', ours: 'idemAutoDup', floor: 'ptDup' },
  { label: 'duplicate: Idem (ioredis autopipelining) vs @node-idempotency/core', ours: 'idemAutoDup', floor: 'niDup' },
  // Informative: a prototype of a suggested change (bench/stores/prototypes.ts), not Idem today.
  { label: 'PROTOTYPE new key: Idem, tick-batched store vs Powertools', ours: 'idemTickNew', floor: 'ptNew' },
  {
    label: 'PROTOTYPE new key: Idem, tick-batched store vs @node-idempotency/core',
    ours: 'idemTickNew',
    floor: 'niNew',
  },
  { label: 'PROTOTYPE duplicate: Idem, tick-batched store vs Powertools', ours: 'idemTickDup', floor: 'ptDup' },
  {
    label: 'PROTOTYPE duplicate: Idem, tick-batched store vs @node-idempotency/core',
    ours: 'idemTickDup',
    floor: 'niDup',
  },
]

const VS_OWN_CLIENT: readonly Row<Name>[] = [
  { label: 'Idem new key vs SET NX + SET (ioredis)', ours: 'idemNew', floor: 'ioNew' },
  { label: 'Powertools new key vs SET NX + SET (@redis/client 6)', ours: 'ptNew', floor: 'v6New' },
  { label: 'node-idem new key vs SET NX + SET (redis 4)', ours: 'niNew', floor: 'v4New' },
  { label: 'Idem duplicate vs GET (ioredis)', ours: 'idemDup', floor: 'ioGet' },
  { label: 'Powertools duplicate vs GET (@redis/client 6)', ours: 'ptDup', floor: 'v6Get' },
  { label: 'node-idem duplicate vs GET (redis 4)', ours: 'niDup', floor: 'v4Get' },
  { label: 'Idem (autopipelining) new key vs SET NX + SET (same client)', ours: 'idemAutoNew', floor: 'ioAutoNew' },
  { label: 'Idem (autopipelining) duplicate vs GET (same client)', ours: 'idemAutoDup', floor: 'ioAutoGet' },
  { label: 'clients: ioredis vs @redis/client 6, SET NX + SET', ours: 'ioNew', floor: 'v6New' },
  { label: 'clients: ioredis vs redis 4, SET NX + SET', ours: 'ioNew', floor: 'v4New' },
  { label: 'clients: ioredis vs @redis/client 6, GET', ours: 'ioGet', floor: 'v6Get' },
  { label: 'clients: ioredis vs redis 4, GET', ours: 'ioGet', floor: 'v4Get' },
  { label: 'clients: ioredis autopipelining vs redis 4, SET NX + SET', ours: 'ioAutoNew', floor: 'v4New' },
  { label: 'clients: ioredis autopipelining vs redis 4, GET', ours: 'ioAutoGet', floor: 'v4Get' },
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
  const auto = new Redis({ ...SERVERS.redis, maxRetriesPerRequest: 2, enableAutoPipelining: true })
  auto.on('error', () => {})
  run.onCleanup('autopipelining client', () => auto.quit())
  const autoIdem = new Idempotency({ store: new RedisStore({ client: auto, prefix: `${P}:auto:` }), scope: SCOPE, ttl })
  const oursAuto: Peer = {
    name: 'Idem (ioredis autopipelining)',
    run: async (key, fn, payload = PAYLOAD) => (await autoIdem.run({ key, payload }, fn)).value,
    close: async () => {},
  }
  const tickIdem = new Idempotency({
    store: new TickBatchingStore(new RedisStore({ client: redis, prefix: `${P}:tick:` })),
    scope: SCOPE,
    ttl,
  })
  const oursTick: Peer = {
    name: 'PROTOTYPE Idem (tick-batched store)',
    run: async (key, fn, payload = PAYLOAD) => (await tickIdem.run({ key, payload }, fn)).value,
    close: async () => {},
  }
  const pt = await powertools(url, `${P}:pt`, ttl)
  const ni = await nodeIdempotency(url, `${P}:ni`, ttl)
  run.onCleanup('peers', () => Promise.all([pt.close(), ni.close()]))

  console.log(
    `peers: @aws-lambda-powertools/idempotency ${versionOf('@aws-lambda-powertools/idempotency')} ` +
      `(CachePersistenceLayer, @redis/client ${versionOf('@redis/client')}, sha256, no local cache), ` +
      `@node-idempotency/core ${versionOf('@node-idempotency/core')} with storage-adapter-redis ` +
      `${versionOf('@node-idempotency/storage-adapter-redis')} (redis ${versionOf('redis')}); ` +
      `Idem: RedisStore on ioredis ${versionOf('ioredis')}, no local cache; all on the shared Redis`,
  )
  process.stderr.write('  verifying that each one deduplicates\n')
  for (const peer of [ours, oursAuto, oursTick, pt, ni]) {
    const otherPayload = await verifyPeer(peer, 'verify')
    console.log(
      `checked: ${peer.name} runs its function once per key, replays the stored value, lets 1 of 8 concurrent calls run; same key with another payload: ${otherPayload}`,
    )
  }
  const validation = await powertoolsValidationDuplicate(url, `${P}:ptv`, ttl)
  console.log(`checked: Powertools with payloadValidationJmesPath on CachePersistenceLayer, a duplicate ${validation}`)

  for (const peer of [ours, oursAuto, oursTick, pt, ni]) {
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
    idemAutoNew: newOf(oursAuto, 'n'),
    idemAutoDup: dupOf(oursAuto),
    idemTickNew: newOf(oursTick, 'n'),
    idemTickDup: dupOf(oursTick),
    ioAutoNew: redisNewFloor(auto, (n) => `${P}:floor:{5:bench:ia${n}}`, values, ttl),
    ioAutoGet: redisGetFloor(auto, cycle(floorKeys)),
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
      cost('new key: Idem (autopipelining)', 'idemAutoNew'),
      cost('new key: PROTOTYPE Idem, tick-batched', 'idemTickNew'),
      cost('new key: Powertools', 'ptNew'),
      cost('new key: @node-idempotency/core', 'niNew'),
      cost('new key: SET NX + SET, ioredis', 'ioNew'),
      cost('new key: SET NX + SET, redis 4', 'v4New'),
      cost('duplicate: Idem', 'idemDup'),
      cost('duplicate: Idem (autopipelining)', 'idemAutoDup'),
      cost('duplicate: PROTOTYPE Idem, tick-batched', 'idemTickDup'),
      cost('duplicate: Powertools', 'ptDup'),
      cost('duplicate: @node-idempotency/core', 'niDup'),
      cost('duplicate: GET, ioredis', 'ioGet'),
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
