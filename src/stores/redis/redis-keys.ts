// Redis key of a record, and the Cluster hash slot it lives in.
//
// A record id becomes `${prefix}{${tag}}`, where the tag is the id with `%` written `%25` and `}`
// written `%7D`. The braces make the whole (escaped) id the key's hash tag, so a record's slot
// depends on its id alone; escaping `}` keeps the tag well-formed for ids that contain one, and
// escaping `%` keeps the mapping one-to-one (`a}` → `a%7D`, `a%7D` → `a%257D`).

export const DEFAULT_REDIS_PREFIX = 'idem:'

/** Cluster hash slots, as Redis counts them. */
export const CLUSTER_SLOTS = 16384

/** CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with. */
const CRC16 = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let c = i << 8
  for (let bit = 0; bit < 8; bit++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff
  CRC16[i] = c
}

const ESCAPED = /[%}]/
const ESCAPED_ALL = /[%}]/g

/** A prefix must not contain braces: the first `{` of a key must be the one that opens the tag. */
export function assertRedisPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || prefix.length > 256 || /[{}]/.test(prefix)) {
    throw new TypeError(
      `RedisStore prefix must be a string of at most 256 characters without "{" or "}", got ${JSON.stringify(prefix)}`,
    )
  }
}

/** The hash tag of `id`: the id itself, unless it holds `%` or `}`. */
export function hashTag(id: string): string {
  return ESCAPED.test(id) ? id.replace(ESCAPED_ALL, (ch) => (ch === '%' ? '%25' : '%7D')) : id
}

export function recordKey(prefix: string, id: string): string {
  return `${prefix}{${hashTag(id)}}`
}

/** The slot of a record's key: CRC16 (XMODEM) of its tag's UTF-8 bytes, modulo 16384. */
export function recordSlot(id: string): number {
  const tag = hashTag(id)
  let crc = 0
  // Ids are printable ASCII in practice (one byte per character); anything else goes through UTF-8.
  if (/^[ -~]*$/.test(tag)) {
    for (let i = 0; i < tag.length; i++)
      crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ tag.charCodeAt(i)) & 0xff] as number)
  } else {
    for (const byte of Buffer.from(tag, 'utf8'))
      crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ byte) & 0xff] as number)
  }
  return crc % CLUSTER_SLOTS
}
