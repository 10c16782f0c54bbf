// The fault loop of one combination: at random moments (from the seeded PRNG) one fault, on the
// workers, on the store or on the broker: SIGKILL, SIGSTOP past the lease, a cut of every
// connection, added latency, a blackhole, a server restart (SIGKILL/immediate shutdown), and, only
// when asked for, a restart of a Redis store that loses everything (wipe).

import type { Prng } from '../examples/incident/prng.js'
import type { Fleet } from './fleet.js'
import type { Wipe } from './judge.js'
import type { Faultable } from './world.js'

export interface FaultCounts {
  kill: number
  stall: number
  cut: number
  latency: number
  blackhole: number
  restart: number
  wipe: number
  /** Workers running with a skewed clock (set by the caller). */
  skewed: number
}

export interface FaultOptions {
  rng: Prng
  fleet: Fleet
  broker: Faultable
  /** Undefined for the control and SQLite: no network store to fault. */
  store: Faultable | undefined
  leaseMs: number
  durationMs: number
  /** Mean pause between two faults. */
  everyMs?: number
  /** The kinds to draw from. Default: DEFAULT_FAULT_KINDS (every kind but wipe). */
  kinds?: readonly FaultKind[]
  /** Filled with each wipe's times, for the judge to tell the doubles a wipe made. */
  wipes?: Wipe[]
  /**
   * Whether `restart` may hit the broker. False for Mosquitto: it loses a message it had confirmed
   * to the publisher now and then across a restart, before any consumer saw it (a broker loss that
   * no consumer can make up for, and not what the run judges).
   */
  restartBroker?: boolean
}

export type FaultKind = Exclude<keyof FaultCounts, 'skewed'>
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stall', 'cut', 'latency', 'blackhole', 'restart', 'wipe']
/**
 * The mix when no kinds are asked for. Not `wipe`: a store that forgets doubles every payment
 * charged before it whose copy comes after it, by definition, so each wipe would add doubles to
 * every Redis row and show nothing new; and a seed replays the same sequence of kinds as before
 * wipe existed. `--faults wipe,…` asks for it.
 */
export const DEFAULT_FAULT_KINDS: readonly FaultKind[] = FAULT_KINDS.filter((kind) => kind !== 'wipe')

export async function injectFaults(o: FaultOptions): Promise<FaultCounts> {
  const counts: FaultCounts = { kill: 0, stall: 0, cut: 0, latency: 0, blackhole: 0, restart: 0, wipe: 0, skewed: 0 }
  const end = Date.now() + o.durationMs
  const everyMs = o.everyMs ?? 1200
  const random = () => o.rng.next()
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, action: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      action()
    }, ms)
    timers.add(timer)
  }
  // Network faults on one target at a time: their ends must not undo each other.
  const busy = new Set<Faultable>()
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, o.rng.int(everyMs / 2, (everyMs * 3) / 2)))
    const kinds = o.kinds ?? DEFAULT_FAULT_KINDS
    const kind = kinds[o.rng.int(0, kinds.length - 1)] as FaultKind
    const targets = [o.broker, ...(o.store === undefined ? [] : [o.store])].filter((t) => !busy.has(t))
    const target = targets[o.rng.int(0, targets.length - 1)]
    switch (kind) {
      case 'kill':
        if (o.fleet.kill(random)) counts.kill++
        break
      case 'stall':
        // Twice the lease: every claim the worker holds lapses and is taken over meanwhile.
        if (o.fleet.stall(random, o.leaseMs * 2 + o.rng.int(0, o.leaseMs))) counts.stall++
        break
      case 'cut':
        if (target === undefined) break
        target.proxy.cut()
        counts.cut++
        break
      case 'latency':
        if (target === undefined) break
        busy.add(target)
        target.proxy.setLatency(o.rng.int(50, 400))
        later(o.rng.int(1000, 3000), () => {
          target.proxy.setLatency(0)
          busy.delete(target)
        })
        counts.latency++
        break
      case 'blackhole':
        if (target === undefined) break
        busy.add(target)
        target.proxy.setBlackhole(true)
        later(o.rng.int(1000, 4000), () => {
          target.proxy.setBlackhole(false)
          busy.delete(target)
        })
        counts.blackhole++
        break
      case 'restart':
        if (target === undefined || (target === o.broker && o.restartBroker === false)) break
        busy.add(target)
        await target.server.restart()
        busy.delete(target)
        counts.restart++
        break
      case 'wipe': {
        // The store only, and only a Redis (the one server that can restart empty): a broker that
        // loses everything loses messages, which is the broker's durability, not Idem's.
        const store = o.store
        if (store === undefined || store.server.restartEmpty === undefined || busy.has(store)) break
        busy.add(store)
        const killedAt = Date.now()
        await store.server.restartEmpty()
        o.wipes?.push({ killedAt, upAt: Date.now() })
        busy.delete(store)
        counts.wipe++
        break
      }
    }
  }
  // End the faults that are still on, now.
  for (const timer of timers) {
    clearTimeout(timer)
  }
  for (const target of [o.broker, o.store]) {
    target?.proxy.setLatency(0)
    target?.proxy.setBlackhole(false)
  }
  return counts
}
