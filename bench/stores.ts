// Server stores benchmark: Idempotency.run() on RedisStore, PostgresStore, MysqlStore and
// TieredStore against each store's raw primitive, the peers on the same Redis, batches, bytes per
// record, and cost at a million retained records. See bench/docs/stores.md.
//
//   npx tsx bench/stores.ts                   full run (under 10 minutes)
//   npx tsx bench/stores.ts --quick           smoke run for CI (figures indicative only)
//   npx tsx bench/stores.ts --section peers   one section: stores, peers, batches, memory, scale
//   add --strict to exit 1 when a goal fails; --no-mysql to leave MysqlStore out (a TODO row)

import { performance } from 'node:perf_hooks'
import { machineLine } from './lib/machine.js'
import { BenchRun, FULL, loadLine, QUICK } from './stores/run.js'
import { batchesSection } from './stores/section-batches.js'
import { memorySection } from './stores/section-memory.js'
import { peersSection } from './stores/section-peers.js'
import { scaleSection } from './stores/section-scale.js'
import { storesSection } from './stores/section-stores.js'
import { Servers } from './stores/servers.js'

const SECTIONS = {
  stores: '1. run() on each server store vs its raw primitive',
  peers: '2. Idem vs Powertools idempotency and @node-idempotency/core on the same Redis',
  batches: '3. beginMany + completeMany of 100 vs 100 x the per-message floor',
  memory: '4. bytes per retained record',
  scale: '5. run() with many retained records (1,000,000; --quick: 20,000) vs few (10,000; --quick: 1,000)',
} as const
type Section = keyof typeof SECTIONS

function parseArgs(argv: readonly string[]): { quick: boolean; strict: boolean; mysql: boolean; sections: Section[] } {
  const usage = `usage: tsx bench/stores.ts [--quick] [--strict] [--no-mysql] [--section ${Object.keys(SECTIONS).join('|')}]...`
  const out = { quick: false, strict: false, mysql: true, sections: [] as Section[] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--quick') out.quick = true
    else if (arg === '--strict') out.strict = true
    else if (arg === '--no-mysql') out.mysql = false
    else if (arg === '--section' && (argv[i + 1] ?? '') in SECTIONS) out.sections.push(argv[++i] as Section)
    else {
      console.error(`unknown argument ${arg}; ${usage}`)
      process.exit(2)
    }
  }
  if (out.sections.length === 0) out.sections = Object.keys(SECTIONS) as Section[]
  return out
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const run = new BenchRun(args.quick ? QUICK : FULL)
  const servers = new Servers(run)
  const startedAt = performance.now()
  const { settings } = run
  const stop = () => {
    void run.cleanup().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    console.log(machineLine())
    console.log(loadLine('at start'))
    console.log(await servers.describeRedis(servers.redis(), 'shared'))
    console.log(await servers.describePg())
    if (args.mysql) console.log(await servers.describeMysql().catch((e: Error) => `mariadb: unreachable: ${e.message}`))
    console.log(
      `method: ${settings.quick ? 'QUICK (smoke run, figures indicative only), ' : ''}` +
        `warm-up ${settings.warmupSeconds} s per case; concurrency 1: ${settings.c1.rounds} rounds x ${settings.c1.seconds} s; ` +
        `concurrency ${settings.concurrency}: ${settings.c64.rounds} rounds x ${settings.c64.seconds} s; ` +
        'ours and floor interleaved, order flipped every round; figures are medians over rounds, ratios medians of per-round ratios',
    )
    const sections = {
      stores: () => storesSection(run, servers, args.mysql ? undefined : '--no-mysql was given'),
      peers: () => peersSection(run, servers),
      batches: () => batchesSection(run, servers, args.mysql),
      memory: () => memorySection(run, servers, args.mysql),
      scale: () => scaleSection(run, servers),
    } satisfies Record<Section, () => Promise<void>>
    for (const section of args.sections) {
      const sectionStart = performance.now()
      console.log(`\n=== ${SECTIONS[section]} (--section ${section}) ===`)
      console.log(loadLine('before'))
      process.stderr.write(`section ${section}\n`)
      await sections[section]()
      await servers.tidyRedis()
      console.log(`${loadLine('after')}; section took ${((performance.now() - sectionStart) / 1000).toFixed(1)} s`)
    }

    console.log('\n=== goals ===')
    for (const goal of run.goals) console.log(`${goal.pass ? 'PASS' : 'FAIL'}  ${goal.text}: ${goal.value}`)
    console.log(`\n${loadLine('at end')}`)
    console.log(`total ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    if (args.strict && run.goals.some((goal) => !goal.pass)) process.exitCode = 1
  } finally {
    await run.cleanup()
  }
}

await main()
