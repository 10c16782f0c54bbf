// A Bloom filter of the ids this process has seen, in two generations so that it forgets: it stays
// within a fixed memory and a bounded false-positive rate however many ids pass through it. A
// negative means "not added to this filter in its last one or two generations", never "absent
// from the store", so TieredStore uses it only to skip a cache read; every claim still goes to the
// primary (docs/tiered.md, "Bloom filter").

import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'

export interface BloomFilterOptions {
  /** Ids one generation holds at the stated rate; the filter remembers at least the last this many. */
  expectedItems: number
  /** The false-positive rate of a lookup while both generations are full, in (0, 0.5]. */
  falsePositiveRate: number
  /** Also start a new generation once the current one is this old, so an id is forgotten after at most twice this. */
  forgetAfter?: Duration
  /** Milliseconds on a clock that never goes back (for `forgetAfter`). Default `performance.now`. */
  now?: () => number
}

/** Bits a generation may have: index arithmetic stays in unsigned 32-bit integers. */
const MAX_BITS = 2 ** 32 - 32

/**
 * Two generations of `expectedItems` ids each. Ids go into the current one; when it holds
 * `expectedItems` (or is `forgetAfter` old) the previous one is cleared and becomes the current
 * one. A lookup asks both, so each is sized for half the stated rate.
 */
export class RotatingBloomFilter {
  /** Bits per generation (a multiple of 32). */
  readonly bits: number
  /** Bit positions set per id. */
  readonly hashes: number
  readonly expectedItems: number
  readonly #maxAgeMs: number | undefined
  readonly #now: () => number
  #current: Uint32Array
  #previous: Uint32Array
  #count = 0
  #startedAt: number

  constructor(options: BloomFilterOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('a Bloom filter needs { expectedItems, falsePositiveRate }')
    }
    this.expectedItems = positiveInteger(options.expectedItems, 'bloom expectedItems')
    const rate = options.falsePositiveRate
    if (typeof rate !== 'number' || !(rate > 0 && rate <= 0.5)) {
      throw new RangeError(`bloom falsePositiveRate must be a number in (0, 0.5], got ${String(rate)}`)
    }
    // The textbook optimum for n items at rate p: m = -n ln p / (ln 2)^2 bits, k = (m / n) ln 2.
    const perGeneration = rate / 2
    const wanted = Math.ceil((-this.expectedItems * Math.log(perGeneration)) / Math.LN2 ** 2)
    if (wanted > MAX_BITS) {
      throw new RangeError(
        `a Bloom filter of ${this.expectedItems} items at ${rate} needs ${wanted} bits per generation, more than ${MAX_BITS}`,
      )
    }
    this.bits = Math.max(32, Math.ceil(wanted / 32) * 32)
    this.hashes = Math.max(1, Math.round((this.bits / this.expectedItems) * Math.LN2))
    this.#maxAgeMs = options.forgetAfter === undefined ? undefined : toMs(options.forgetAfter, 'bloom forgetAfter')
    this.#now = options.now ?? (() => performance.now())
    this.#current = new Uint32Array(this.bits / 32)
    this.#previous = new Uint32Array(this.bits / 32)
    this.#startedAt = this.#maxAgeMs === undefined ? 0 : this.#now()
  }

  /** Bytes the two generations hold. */
  get bytes(): number {
    return this.#current.byteLength + this.#previous.byteLength
  }

  add(id: string): void {
    this.#age()
    if (this.#count >= this.expectedItems) this.#rotate()
    const [h1, h2] = hash(id)
    const bits = this.#current
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % this.bits
      bits[bit >>> 5] = (bits[bit >>> 5] as number) | (1 << (bit & 31))
    }
    this.#count++
  }

  /** False: `id` was certainly not added in the generations held. True: it probably was. */
  mightContain(id: string): boolean {
    this.#age()
    const [h1, h2] = hash(id)
    return this.#has(this.#current, h1, h2) || this.#has(this.#previous, h1, h2)
  }

  #has(bits: Uint32Array, h1: number, h2: number): boolean {
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % this.bits
      if (((bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false
    }
    return true
  }

  #age(): void {
    if (this.#maxAgeMs !== undefined && this.#now() - this.#startedAt >= this.#maxAgeMs) this.#rotate()
  }

  #rotate(): void {
    const cleared = this.#previous.fill(0)
    this.#previous = this.#current
    this.#current = cleared
    this.#count = 0
    if (this.#maxAgeMs !== undefined) this.#startedAt = this.#now()
  }
}

const pair: [number, number] = [0, 0]

/**
 * Two independent 32-bit hashes of the UTF-16 code units in one pass (FNV-1a, and a
 * multiply-xorshift with another constant), each finished with Murmur3's fmix32 so that every
 * input bit reaches every output bit. The k positions are h1 + i * h2 (Kirsch and Mitzenmacher),
 * h2 odd so that it steps through distinct positions. Not cryptographic: ids are not secrets, and
 * a crafted collision costs only a cache read. Returns a shared tuple: read it before hashing again.
 */
function hash(id: string): [number, number] {
  let h1 = 0x811c9dc5
  let h2 = 0x9747b28c
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 0x01000193)
    h2 = Math.imul(h2 ^ c, 0x5bd1e995)
    h2 ^= h2 >>> 15
  }
  pair[0] = fmix32(h1) >>> 0
  pair[1] = (fmix32(h2 ^ id.length) | 1) >>> 0
  return pair
}

function fmix32(h: number): number {
  let x = h ^ (h >>> 16)
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  return x ^ (x >>> 16)
}
