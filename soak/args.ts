// Command line of the soak run.

import type { LeakKind } from './leak.js'
import type { StoreName } from './stores.js'

export const USAGE = `usage: npm run soak -- [--minutes N] [--store redis|postgres|both] [--rate N] [--ttl S]
                        [--sweep-every S] [--lease S] [--sample-every S] [--warmup S] [--seed N]
  --minutes N       length of the traffic, minutes (default 30; 1 in CI)
  --store           which store(s) the traffic runs on (default both, at once)
  --rate N          new operations per second per traffic source (HTTP and consumer, per store; default 100)
  --ttl S           record ttl, seconds (default 20)
  --sweep-every S   PostgreSQL sweep interval, seconds (default 5)
  --lease S         the consumer's lease, seconds (default 5; keep it below the ttl, see soak/consumer-traffic.ts)
  --sample-every S  seconds between samples (default 2 up to 2 minutes, else 5)
  --warmup S        seconds before the growth window may start (default 12; the window is the later of
                    this and the second half of the run)
  --seed N          seed of the traffic's random choices (default: random, printed)
self-tests (each must make the verdict FAIL):
  --leak [memory|handles]  the HTTP handler keeps 2 KiB per request and/or leaks a timer every 50
                           requests (default: both)
  --no-sweep               PostgreSQL is never swept, so its table outgrows ttl x rate`

export interface SoakArgs {
  minutes: number
  stores: StoreName[]
  rate: number
  ttlS: number
  sweepEveryS: number
  leaseS: number
  sampleEveryS: number
  warmupS: number
  seed: number
  leak: Set<LeakKind>
  sweep: boolean
}

export function parseArgs(argv: readonly string[]): SoakArgs {
  const args: SoakArgs = {
    minutes: 30,
    stores: ['redis', 'postgres'],
    rate: 100,
    ttlS: 20,
    sweepEveryS: 5,
    leaseS: 5,
    sampleEveryS: 0,
    warmupS: 12,
    seed: Math.floor(Math.random() * 2 ** 31),
    leak: new Set(),
    sweep: true,
  }
  const number = (name: string, value: string | undefined) => {
    const n = Number(value)
    if (value === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const next = () => argv[++i]
    if (arg === '--minutes') args.minutes = number(arg, next())
    else if (arg === '--rate') args.rate = number(arg, next())
    else if (arg === '--ttl') args.ttlS = number(arg, next())
    else if (arg === '--sweep-every') args.sweepEveryS = number(arg, next())
    else if (arg === '--lease') args.leaseS = number(arg, next())
    else if (arg === '--sample-every') args.sampleEveryS = number(arg, next())
    else if (arg === '--warmup') args.warmupS = number(arg, next())
    else if (arg === '--seed') args.seed = Math.floor(number(arg, next()))
    else if (arg === '--no-sweep') args.sweep = false
    else if (arg === '--store') {
      const store = next()
      if (store === 'both') args.stores = ['redis', 'postgres']
      else if (store === 'redis' || store === 'postgres') args.stores = [store]
      else throw new Error('--store takes redis, postgres or both')
    } else if (arg === '--leak') {
      const kind = argv[i + 1]
      if (kind === 'memory' || kind === 'handles') {
        args.leak.add(kind)
        i++
      } else {
        args.leak.add('memory')
        args.leak.add('handles')
      }
    } else if (arg === '--help' || arg === '-h') throw new Error(USAGE)
    else throw new Error(`unknown argument ${arg}`)
  }
  if (args.sampleEveryS === 0) args.sampleEveryS = args.minutes <= 2 ? 2 : 5
  return args
}
