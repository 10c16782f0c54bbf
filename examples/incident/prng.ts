// A small seeded PRNG (mulberry32), so that a seed replays the exact same incident.

export interface Prng {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number
  /** True with probability `p`. Always draws, so the sequence does not depend on `p`. */
  chance(p: number): boolean
}

/** `stream` separates independent sequences drawn from the same seed. */
export function createPrng(seed: number, stream = 0): Prng {
  // splitmix32 of (seed, stream) spreads neighbouring seeds apart before mulberry32 takes over.
  let state = Math.imul((seed >>> 0) ^ Math.imul(stream + 1, 0x9e3779b9), 0x85ebca6b) >>> 0
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35) >>> 0
  state = (state ^ (state >>> 16)) >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
  }
}
