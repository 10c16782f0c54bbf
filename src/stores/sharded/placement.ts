// Which shard owns a record id: rendezvous (highest-random-weight) hashing over shard names.
// Every shard scores the id and the highest score wins. Adding a shard moves only the ids the new
// shard now wins (about 1/(n+1) of them); removing one moves only the ids it owned. The score
// depends on the shard's name and the id, never on the order of the list, so every process that
// is given the same names places every id on the same shard.
//
// The hash is part of the stored data's layout: changing it would move records. It is FNV-1a
// (32-bit) over the id's UTF-16 code units, finished by MurmurHash3's fmix32 mixer so that ids
// differing in their last character still spread. It is a few multiplications per character, an
// order of magnitude cheaper than SHA-256 through node:crypto for short ids (bench/sharded.ts
// measures both), and placement needs spread, not resistance to a chosen-key attacker: a client
// that crafts ids to land on one shard only loads that shard, it cannot break deduplication.

import type { IdempotencyStore } from '../../contract/types.js'

/** One shard: a store and the stable name that placement hashes (never its position in a list). */
export interface Shard {
  name: string
  store: IdempotencyStore
}

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
/** 2^21: the first 32-bit score becomes the high bits of a 53-bit one, so that ties need ~2^53 draws. */
const HIGH = 0x200000

/** FNV-1a over UTF-16 code units, then fmix32: a well-mixed unsigned 32-bit hash. */
export function hash32(text: string): number {
  let h = FNV_OFFSET
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return fmix32(h)
}

function fmix32(value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The weight of shard (seeds a, b) for an id hashed to `h`: 53 bits, from two independent mixes. */
function weight(h: number, a: number, b: number): number {
  return fmix32(h ^ a) * HIGH + (fmix32(Math.imul(h, 0x9e3779b1) ^ b) >>> 11)
}

/** The shards of one configuration, with their seeds computed once. */
export class Placement {
  readonly shards: readonly Shard[]
  readonly #a: Uint32Array
  readonly #b: Uint32Array

  constructor(shards: readonly Shard[]) {
    // Sorted by name so that a tie (two equal 53-bit weights) goes the same way whatever the
    // order the shards were listed in.
    this.shards = [...shards].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
    this.#a = Uint32Array.from(this.shards, (shard) => hash32(`a:${shard.name}`))
    this.#b = Uint32Array.from(this.shards, (shard) => hash32(`b:${shard.name}`))
  }

  /** The shard that owns `id`. */
  shardOf(id: string): Shard {
    return this.shards[this.indexOf(id)] as Shard
  }

  /** The position, in `shards`, of the shard that owns `id`. */
  indexOf(id: string): number {
    const h = hash32(id)
    let best = 0
    let bestWeight = -1
    for (let i = 0; i < this.shards.length; i++) {
      const w = weight(h, this.#a[i] as number, this.#b[i] as number)
      // `>=`: on a tie the later name (in sorted order) wins, deterministically.
      if (w >= bestWeight) {
        best = i
        bestWeight = w
      }
    }
    return best
  }
}
