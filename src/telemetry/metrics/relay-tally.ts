// The tallies of outbox relays, one per `relay` label: the relays' own counters (`relay.stats`),
// counted from when each was watched and kept when it stops being watched, so that a counter never
// goes down; and the outbox's backlog, asked once per label and scrape.

import type { OutboxBacklog } from '../../outbox/outbox.js'
import type { OutboxRelay } from '../../outbox/relay.js'
import { LabelValues } from '../core/labels.js'
import type { Labels } from './collected-histogram.js'
import { answerOrNothing, type Sample } from './scrape-metrics.js'

/** The counters of `relay.stats` that are exported. */
export const RELAY_COUNTERS = ['published', 'retried', 'failed', 'errors'] as const
export type RelayCounter = (typeof RELAY_COUNTERS)[number]
type Totals = Record<RelayCounter, number>

const zero = (): Totals => ({ published: 0, retried: 0, failed: 0, errors: 0 })

function read(relay: OutboxRelay): Totals {
  const { published, retried, failed, errors } = relay.stats
  return { published, retried, failed, errors }
}

/** The relays watched under one label. */
export class RelayGroup {
  readonly labels: Labels
  /** What relays counted while watched, up to when they stopped being watched. */
  readonly #retired = zero()
  /** Each relay watched now, with its counters when the watch began. */
  readonly #members = new Map<OutboxRelay, Totals>()

  constructor(name: string) {
    this.labels = { relay: name }
  }

  add(relay: OutboxRelay): void {
    this.#members.set(relay, read(relay))
  }

  /** Stop reading `relay`, keeping what it counted while watched. */
  remove(relay: OutboxRelay): void {
    const since = this.#members.get(relay)
    if (since === undefined) return
    this.#members.delete(relay)
    const now = read(relay)
    for (const name of RELAY_COUNTERS) this.#retired[name] += now[name] - since[name]
  }

  total(name: RelayCounter): number {
    let sum = this.#retired[name]
    for (const [relay, since] of this.#members) sum += relay.stats[name] - since[name]
    return sum
  }

  /**
   * The backlog of this label's outbox. Relays watched under one label are taken to share an
   * outbox (several relays draining one table), so one of them is asked; none when none is watched.
   */
  backlog(): Promise<OutboxBacklog | undefined> {
    const first = this.#members.keys().next()
    if (first.done === true) return Promise.resolve(undefined)
    const relay = first.value
    return answerOrNothing(() => relay.backlog())
  }
}

export class RelayTally {
  readonly #names: LabelValues
  readonly #byLabel = new Map<string, RelayGroup>()
  /** The backlogs of the scrape under way: the three backlog gauges share one query per label. */
  #backlogs: Promise<(readonly [Labels, OutboxBacklog])[]> | undefined

  constructor(maxLabelValues: number) {
    this.#names = new LabelValues(maxLabelValues)
  }

  /** The group of the relays named `name`. */
  of(name: string): RelayGroup {
    const label = this.#names.of(name)
    let group = this.#byLabel.get(label)
    if (group === undefined) {
      group = new RelayGroup(label)
      this.#byLabel.set(label, group)
    }
    return group
  }

  /** `idem_outbox_<name>_total`: every relay label watched, from 0. */
  *counter(name: RelayCounter): Iterable<Sample> {
    for (const group of this.#byLabel.values()) yield [group.labels, group.total(name)]
  }

  /** A backlog gauge: `pick` of each label's backlog; labels whose query failed have none. */
  async backlogGauge(pick: (backlog: OutboxBacklog) => number): Promise<Sample[]> {
    return (await this.#scrapeBacklogs()).map(([labels, backlog]) => [labels, pick(backlog)] as const)
  }

  /** One query per label for the three gauges of one scrape (their `collect` start together). */
  #scrapeBacklogs(): Promise<(readonly [Labels, OutboxBacklog])[]> {
    if (this.#backlogs === undefined) {
      const groups = [...this.#byLabel.values()]
      this.#backlogs = Promise.all(groups.map((group) => group.backlog())).then((backlogs) =>
        backlogs.flatMap((backlog, i) =>
          backlog === undefined ? [] : [[(groups[i] as RelayGroup).labels, backlog] as const],
        ),
      )
      const forget = () => {
        this.#backlogs = undefined
      }
      this.#backlogs.then(forget, forget)
    }
    return this.#backlogs
  }
}
