// Consumer core micro-benchmark: Node CPU time per message of IdempotentConsumer.handle and
// handleBatch over an in-memory broker on a MemoryStore (no network), next to Idempotency.run,
// runMany, the store's own begin + complete, and the same broker loop without Idem (the floor).
// CPU time (process.cpuUsage, user + system) rather than wall time: it is what a shared machine
// disturbs least. Run: npx tsx bench/consumer-core.ts [--quick] [--case handle,run,...]

import { performance } from 'node:perf_hooks'
import { IdempotentConsumer } from '../src/consumer/consumer.js'
import type { Delivery } from '../src/consumer/types.js'
import { Idempotency } from '../src/core/idempotency.js'
import { MemoryStore } from '../src/stores/memory/memory-store.js'
import { machineLine } from './lib/machine.js'
import { formatTable } from './lib/report.js'

interface Payload {
  orderId: number
  amountCents: number
}

/** Deliveries per pull (an XREADGROUP COUNT) and deliveries in flight, as bench/consumers/redis-streams.ts uses. */
const COUNT = 64
const CONCURRENCY = 256
/** The Redis Streams adapter's deliveries carry extendEveryMs (a third of the claim idle time): so do ours. */
const EXTEND_EVERY_MS = 10_000

type CaseName = 'store' | 'run' | 'runMany' | 'raw' | 'handle' | 'handleBatch'

interface Sample {
  cpuMicros: number
  rate: number
}

/** One case: `drain(n)` processes n new messages on fresh state; only the drain is measured. */
type Case = (n: number) => Promise<void>

const payloadOf = (i: number): Payload => ({ orderId: i, amountCents: 4200 })
const handler = (_payload: Payload): undefined => undefined
let seq = 0
const nextKey = (): string => `order-${(seq++).toString(36)}`

/** The store's own work per message: begin then complete, COUNT at a time. */
const storeCase: Case = async (n) => {
  const store = new MemoryStore()
  for (let done = 0; done < n; done += COUNT) {
    await Promise.all(
      Array.from({ length: Math.min(COUNT, n - done) }, async () => {
        const id = `5:bench:${nextKey()}`
        const begun = await store.begin(id, 'fingerprint', 30_000, 86_400_000)
        if (begun.outcome !== 'acquired') throw new Error(`store: ${begun.outcome}`)
        await store.complete(id, begun.token, '{}', 86_400_000)
      }),
    )
  }
}

/** `run()` with a new key each call, COUNT started together. */
const runCase: Case = async (n) => {
  const idem = new Idempotency({ store: new MemoryStore(), scope: 'bench' })
  for (let done = 0; done < n; done += COUNT) {
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < Math.min(COUNT, n - done); i++) {
      runs.push(idem.run({ key: nextKey(), payload: payloadOf(done + i) }, () => handler(payloadOf(i))))
    }
    await Promise.all(runs)
  }
}

/** `runMany()` of COUNT new keys per call. */
const runManyCase: Case = async (n) => {
  const idem = new Idempotency({ store: new MemoryStore(), scope: 'bench' })
  for (let done = 0; done < n; done += COUNT) {
    const inputs = Array.from({ length: Math.min(COUNT, n - done) }, (_, i) => ({
      key: nextKey(),
      payload: payloadOf(done + i),
    }))
    await Promise.all(idem.runMany(inputs, (_ctx, i) => handler(inputs[i]?.payload as Payload)))
  }
}

/** A pull broker in memory: deliveries whose ack/retry/deadLetter/extend are async no-ops that count. */
class MemoryBroker {
  acked = 0
  failed = 0
  #next = 0
  readonly #n: number
  #wake: (() => void) | undefined

  constructor(n: number) {
    this.#n = n
  }

  get remaining(): number {
    return this.#n - this.#next
  }

  take(max: number): Delivery<Payload>[] {
    const out: Delivery<Payload>[] = []
    for (; out.length < max && this.#next < this.#n; this.#next++) out.push(this.#delivery(this.#next))
    return out
  }

  /** Resolves once every message was told its outcome. */
  finished(): Promise<void> {
    if (this.acked + this.failed >= this.#n) return Promise.resolve()
    return new Promise((resolve) => {
      this.#wake = resolve
    })
  }

  #settled(ok: boolean): void {
    if (ok) this.acked++
    else this.failed++
    if (this.acked + this.failed >= this.#n) this.#wake?.()
  }

  #delivery(i: number): Delivery<Payload> {
    return {
      key: nextKey(),
      payload: payloadOf(i),
      deliveryCount: 1,
      ack: async () => this.#settled(true),
      retry: async () => this.#settled(false),
      deadLetter: async () => this.#settled(false),
      extend: async () => undefined,
      extendEveryMs: EXTEND_EVERY_MS,
    }
  }
}

/** The same pull loop without Idem: the handler, then ack, at most CONCURRENCY in flight. */
const rawCase: Case = async (n) => {
  const broker = new MemoryBroker(n)
  let inFlight = 0
  let wake: (() => void) | undefined
  while (broker.remaining > 0) {
    while (CONCURRENCY - inFlight < COUNT) await new Promise<void>((resolve) => (wake = resolve))
    for (const delivery of broker.take(COUNT)) {
      inFlight++
      void (async () => {
        await handler(delivery.payload)
        await delivery.ack()
        inFlight--
        wake?.()
      })()
    }
  }
  await broker.finished()
}

/** An adapter's pull loop: COUNT deliveries per pull, as capacity allows, each to handle() or all to handleBatch(). */
const consumerCase =
  (batch: boolean): Case =>
  async (n) => {
    const idem = new Idempotency({ store: new MemoryStore(), scope: 'bench' })
    const consumer = new IdempotentConsumer<Payload>({ idem, concurrency: CONCURRENCY, handler })
    const broker = new MemoryBroker(n)
    while (broker.remaining > 0) {
      await consumer.whenCapacity()
      const deliveries = broker.take(Math.min(COUNT, consumer.capacity))
      if (batch) void consumer.handleBatch(deliveries)
      else for (const delivery of deliveries) void consumer.handle(delivery)
    }
    await broker.finished()
    if (broker.failed > 0) throw new Error(`${batch ? 'handleBatch' : 'handle'}: ${broker.failed} not acked`)
    await consumer.close()
  }

const CASES: Record<CaseName, { label: string; drain: Case }> = {
  store: { label: 'MemoryStore begin + complete (store floor)', drain: storeCase },
  run: { label: `Idempotency.run, ${COUNT} at once`, drain: runCase },
  runMany: { label: `Idempotency.runMany of ${COUNT}`, drain: runManyCase },
  raw: { label: 'broker loop without Idem (consumer floor)', drain: rawCase },
  handle: { label: 'IdempotentConsumer.handle', drain: consumerCase(false) },
  handleBatch: { label: `IdempotentConsumer.handleBatch of ${COUNT}`, drain: consumerCase(true) },
}

async function sample(drain: Case, n: number): Promise<Sample> {
  const startedAt = performance.now()
  const cpu = process.cpuUsage()
  await drain(n)
  const used = process.cpuUsage(cpu)
  return { cpuMicros: (used.user + used.system) / n, rate: n / ((performance.now() - startedAt) / 1000) }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

export async function benchConsumerCore(opts: {
  quick: boolean
  cases?: readonly CaseName[]
}): Promise<{ name: CaseName; cpuMicros: number[]; rate: number }[]> {
  const names = opts.cases ?? (Object.keys(CASES) as CaseName[])
  const messages = opts.quick ? 4_000 : 40_000
  const rounds = opts.quick ? 1 : 7
  for (const name of names) await sample(CASES[name].drain, opts.quick ? 2_000 : 20_000) // warm-up (JIT)
  const samples = new Map<CaseName, Sample[]>(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    process.stderr.write(`  round ${round + 1}/${rounds}\n`)
    // Interleaved, order flipped every round, so that a busy moment on the machine touches every case.
    const order = round % 2 === 0 ? names : [...names].reverse()
    for (const name of order) samples.get(name)?.push(await sample(CASES[name].drain, messages))
  }
  return names.map((name) => {
    const list = samples.get(name) ?? []
    return { name, cpuMicros: list.map((s) => s.cpuMicros), rate: median(list.map((s) => s.rate)) }
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick')
  const only = process.argv[process.argv.indexOf('--case') + 1]
  const cases = process.argv.includes('--case') ? (only?.split(',') as CaseName[]) : undefined
  const started = performance.now()
  const rows = await benchConsumerCore({ quick, ...(cases === undefined ? {} : { cases }) })
  const store = median(rows.find((r) => r.name === 'store')?.cpuMicros ?? [])
  console.log(machineLine())
  console.log(
    `method: ${quick ? '4,000 messages, 1 round' : '40,000 messages per sample, 7 interleaved rounds, medians'}; new keys; ${COUNT} per pull, ${CONCURRENCY} in flight; MemoryStore`,
  )
  console.log(
    formatTable(
      ['case', 'CPU µs/msg', 'min-max', 'vs store', 'msg/s (wall)'],
      rows.map((row) => {
        const cpu = median(row.cpuMicros)
        return [
          CASES[row.name].label,
          cpu.toFixed(1),
          `${Math.min(...row.cpuMicros).toFixed(1)}-${Math.max(...row.cpuMicros).toFixed(1)}`,
          store > 0 ? `${(cpu / store).toFixed(1)}x` : '-',
          Math.round(row.rate).toLocaleString('en-US'),
        ]
      }),
    ),
  )
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`)
}
