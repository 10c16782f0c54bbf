// One consumer group on one stream: the Redis Streams commands the adapter sends, and their
// replies parsed. The one place that knows the wire shapes of XREADGROUP, XAUTOCLAIM and XPENDING.

import type { RedisStreamClient, StreamArg } from './redis-streams-driver.js'

/** A stream entry as read from the group. */
export interface StreamEntry {
  readonly stream: string
  /** The entry id Redis assigned ("1700000000000-0"). */
  readonly id: string
  /** Its fields; the last value wins when a field repeats. */
  readonly fields: Readonly<Record<string, string>>
  /** 1 on the first delivery; from XPENDING for a claimed entry. */
  readonly deliveryCount: number
  /** Set when the message was deleted (trimmed) while pending: only its id is left to acknowledge. */
  readonly deleted?: true
}

/** What the dead-letter entry records besides the original fields. */
export interface DeadLetterInfo {
  reason: string
  deliveryCount: number
}

/** Fields added to a dead-lettered entry (the original fields are kept as they were). */
export const DEAD_LETTER_FIELDS = {
  reason: 'idem-reason',
  entryId: 'idem-entry-id',
  stream: 'idem-stream',
  group: 'idem-group',
  deliveryCount: 'idem-delivery-count',
} as const

export interface AutoClaimed {
  /** The cursor for the next XAUTOCLAIM; '0-0' once the whole pending list was scanned. */
  next: string
  entries: StreamEntry[]
  /** Pending entries whose message was deleted (trimmed) before it was acknowledged: Redis dropped them. */
  deleted: string[]
}

/** The server's "no such group (or stream)" error: Redis restarted without persistence, or the group was destroyed. */
export function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP')
}

export class StreamGroup {
  readonly client: RedisStreamClient
  readonly stream: string
  readonly group: string
  readonly consumer: string
  /** Where a (re-)created group starts reading: '0' for the whole stream, '$' for new entries only. */
  readonly startId: string

  constructor(client: RedisStreamClient, stream: string, group: string, consumer: string, startId: string) {
    this.client = client
    this.stream = stream
    this.group = group
    this.consumer = consumer
    this.startId = startId
  }

  /**
   * Create the group (and the stream, MKSTREAM) unless it exists. True when it was created. Run at
   * start and after NOGROUP: a Redis that restarted without persistence has neither.
   */
  async ensureGroup(): Promise<boolean> {
    try {
      await this.client.call('XGROUP', 'CREATE', this.stream, this.group, this.startId, 'MKSTREAM')
      return true
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('BUSYGROUP')) return false
      throw error
    }
  }

  /**
   * XREADGROUP on `reader` (a connection of its own: BLOCK holds it). `from` '>' reads entries never
   * delivered to the group (delivery count 1); '0' or an entry id re-reads this consumer's own
   * pending entries, which Redis counts as another delivery.
   */
  async read(
    reader: RedisStreamClient,
    count: number,
    blockMs: number | undefined,
    from = '>',
  ): Promise<StreamEntry[]> {
    const block: StreamArg[] = blockMs === undefined ? [] : ['BLOCK', blockMs]
    const args: StreamArg[] = [
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      count,
      ...block,
      'STREAMS',
      this.stream,
      from,
    ]
    const reply = (await reader.call('XREADGROUP', ...args)) as [string, RawEntry[]][] | null
    const raw = reply?.[0]?.[1] ?? []
    if (from === '>') return raw.map((entry) => this.#entry(entry, 1))
    // A history read answers [id, null] for an entry deleted while pending; counts come from XPENDING.
    const counts = await this.deliveryCounts(raw.map(([id]) => id))
    return raw.map((entry) => this.#entry(entry, counts.get(entry[0]) ?? 1))
  }

  /**
   * Claim for this consumer up to `count` entries that other consumers (or this one, before a crash)
   * left pending for at least `minIdleMs`, scanning the pending list from `cursor`. XAUTOCLAIM
   * increments each entry's delivery counter but does not return it, so one XPENDING per claimed
   * entry (all sent at once) reads the new count back.
   */
  async autoClaim(minIdleMs: number, cursor: string, count: number): Promise<AutoClaimed> {
    const reply = (await this.client.call(
      'XAUTOCLAIM',
      this.stream,
      this.group,
      this.consumer,
      Math.max(0, Math.floor(minIdleMs)),
      cursor,
      'COUNT',
      count,
    )) as [string, RawEntry[], string[]?]
    const [next, raw, deleted = []] = reply
    const counts = await this.deliveryCounts(raw.map(([id]) => id))
    return { next, entries: raw.map((entry) => this.#entry(entry, counts.get(entry[0]) ?? 1)), deleted }
  }

  /** Delivery counts of pending entries (XPENDING's extended form, one call per id, sent together). */
  async deliveryCounts(ids: readonly string[]): Promise<Map<string, number>> {
    const replies = await Promise.all(
      ids.map((id) => this.client.call('XPENDING', this.stream, this.group, id, id, 1) as Promise<PendingRow[]>),
    )
    const counts = new Map<string, number>()
    for (const rows of replies) {
      const row = rows[0]
      if (row !== undefined) counts.set(row[0], Number(row[3]))
    }
    return counts
  }

  /** XACK: the group forgets the entries. Acknowledging one already acknowledged is harmless. */
  async ack(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0
    return (await this.client.call('XACK', this.stream, this.group, ...ids)) as number
  }

  /**
   * XCLAIM to this consumer with JUSTID: the entry's idle time is reset (or set to `idleMs`) and its
   * delivery counter left alone. Resetting it keeps XAUTOCLAIM elsewhere off an entry whose handler
   * still runs; setting it to `claimIdle - delay` makes the entry claimable again after `delay`.
   * An entry no longer pending (acknowledged meanwhile) is not claimed.
   */
  async touch(id: string, idleMs = 0): Promise<boolean> {
    const idle: StreamArg[] = idleMs > 0 ? ['IDLE', Math.floor(idleMs)] : []
    const claimed = (await this.client.call(
      'XCLAIM',
      this.stream,
      this.group,
      this.consumer,
      0,
      id,
      ...idle,
      'JUSTID',
    )) as string[]
    return claimed.length > 0
  }

  /**
   * Copy the entry to `deadLetterStream` with why and where it came from, and acknowledge it, in one
   * MULTI: both happen or neither, so a poison message is never lost between the two nor copied twice
   * by a consumer that crashed between them. On a Cluster both keys must hash to one slot: give the
   * stream a hash tag ("{orders}" and "{orders}:dead").
   */
  async deadLetter(entry: StreamEntry, deadLetterStream: string, info: DeadLetterInfo): Promise<void> {
    const fields: StreamArg[] = []
    for (const [name, value] of Object.entries(entry.fields)) fields.push(name, value)
    fields.push(
      DEAD_LETTER_FIELDS.reason,
      info.reason,
      DEAD_LETTER_FIELDS.entryId,
      entry.id,
      DEAD_LETTER_FIELDS.stream,
      this.stream,
      DEAD_LETTER_FIELDS.group,
      this.group,
      DEAD_LETTER_FIELDS.deliveryCount,
      info.deliveryCount,
    )
    const replies = await this.client
      .multi([
        ['xadd', deadLetterStream, '*', ...fields],
        ['xack', this.stream, this.group, entry.id],
      ])
      .exec()
    if (replies === null) throw new Error(`the dead-letter transaction for entry ${entry.id} was discarded`)
    for (const [error] of replies) if (error !== null) throw error
  }

  /** Pending entries of the whole group (XPENDING summary form). */
  async pendingCount(): Promise<number> {
    const summary = (await this.client.call('XPENDING', this.stream, this.group)) as [number, ...unknown[]]
    return Number(summary[0])
  }

  /**
   * The group's `lag` from XINFO GROUPS (Redis 7): entries of the stream not yet delivered to any
   * of its consumers. Undefined when Redis cannot tell (null: after deletions in the range, or a
   * group set to an arbitrary id), before Redis 7 (no such field), or when the group is not there.
   */
  async lag(): Promise<number | undefined> {
    const groups = (await this.client.call('XINFO', 'GROUPS', this.stream)) as unknown[]
    for (const group of groups) {
      const info = infoFields(group)
      if (info.get('name') !== this.group) continue
      const lag = info.get('lag')
      if (lag === undefined || lag === null) return undefined
      const n = Number(lag)
      return Number.isFinite(n) ? n : undefined
    }
    return undefined
  }

  #entry([id, flat]: RawEntry, deliveryCount: number): StreamEntry {
    const fields: Record<string, string> = {}
    if (flat !== null) for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string
    if (flat === null) return { stream: this.stream, id, fields, deliveryCount, deleted: true }
    return { stream: this.stream, id, fields, deliveryCount }
  }
}

/** One XINFO reply as name → value: a flat [name, value, …] array (RESP2) or a map (RESP3). */
function infoFields(reply: unknown): Map<string, unknown> {
  if (reply instanceof Map) return new Map([...reply].map(([k, v]) => [String(k), v]))
  const fields = new Map<string, unknown>()
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1])
  else if (reply !== null && typeof reply === 'object') for (const [k, v] of Object.entries(reply)) fields.set(k, v)
  return fields
}

/** An entry on the wire: its id and its fields flattened; null fields for an entry deleted while pending. */
type RawEntry = [id: string, fields: string[] | null]
/** One row of XPENDING's extended form: id, consumer, idle ms, delivery count. */
type PendingRow = [id: string, consumer: string, idle: number, deliveries: number]
