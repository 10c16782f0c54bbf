// A CPU profile's samples summed by where the running code lives (Idem's directories, the clients,
// Node, idle, garbage collection), as shares of the profiled wall time: bench/consumers/profile.ts
// prints them for bench/docs/consumers.md.

/** The part of V8's `Profiler.Profile` this reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[]
  samples?: number[]
  timeDeltas?: number[]
}

/** Where a sampled function lives. */
export function classify(functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle: waiting for Redis or the broker'
  if (functionName === '(garbage collector)') return 'garbage collection'
  if (functionName === 'writeUtf8String' || functionName === 'writeBuffer' || functionName === 'writev') {
    return 'socket write calls'
  }
  if (url.includes('/src/consumer/')) return 'src/consumer (the consumer core)'
  if (url.includes('/src/brokers/')) return 'the adapter (src/brokers)'
  if (url.includes('/src/stores/') || url.includes('/src/drivers/')) return 'src/stores and src/drivers'
  if (url.includes('/src/')) return 'src/core (run, runMany, execute, fingerprint)'
  if (url.includes('/ioredis/') || url.includes('/redis-parser/')) return 'ioredis'
  if (url.includes('/amqplib/')) return 'amqplib'
  if (url.includes('/nats/')) return 'nats.js'
  if (url.includes('/bench/')) return 'the benchmark'
  return 'Node internals (streams, microtasks, timers, buffers)'
}

/** Each place's share of the profiles' sampled time, largest first. */
export function shares(
  profiles: readonly CpuProfile[],
  place: (functionName: string, url: string) => string,
): [string, number][] {
  const time = new Map<string, number>()
  let total = 0
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
    const samples = profile.samples ?? []
    const deltas = profile.timeDeltas ?? []
    for (let i = 0; i < samples.length; i++) {
      const node = nodes.get(samples[i] as number)
      const delta = deltas[i] ?? 0
      if (node === undefined) continue
      const where = place(node.callFrame.functionName, node.callFrame.url)
      time.set(where, (time.get(where) ?? 0) + delta)
      total += delta
    }
  }
  return [...time]
    .map(([where, t]): [string, number] => [where, total === 0 ? 0 : t / total])
    .sort((a, b) => b[1] - a[1])
}
