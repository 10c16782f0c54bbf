// One live chart per route: requests, duplicates absorbed (replayed), rejections and in-progress
// conflicts, per second. Each point is the difference between two polls of GET /v1/routes divided
// by the seconds between them; the last WINDOW points are kept.

import uPlot from 'uplot'

const WINDOW = 120

/** The counters a chart plots, from a route's `stats` in GET /v1/routes. */
export const SERIES = /** @type {const} */ ([
  { key: 'requests', label: 'Requests', stroke: '#1d4ed8', dash: undefined },
  { key: 'replayed', label: 'Duplicates absorbed', stroke: '#047857', dash: [6, 3] },
  { key: 'rejected', label: 'Rejections', stroke: '#b91c1c', dash: [2, 2] },
  { key: 'inProgress', label: 'In-progress conflicts', stroke: '#a16207', dash: [10, 3, 2, 3] },
])

/** @typedef {Record<(typeof SERIES)[number]['key'], number>} Counters */

/** @param {any} stats a RouteStatsSnapshot @returns {Counters} */
export function countersOf(stats) {
  return {
    requests: Number(stats?.requests ?? 0),
    replayed: Number(stats?.outcomes?.replayed ?? 0),
    rejected: Number(stats?.outcomes?.rejected ?? 0),
    inProgress: Number(stats?.rejected?.IN_PROGRESS ?? 0),
  }
}

export class RouteChart {
  /** @type {uPlot} */
  #plot
  /** @type {number[][]} */
  #data
  /** @type {{ at: number, counters: Counters } | undefined} */
  #last
  #draws = 0

  /**
   * @param {HTMLElement} container where the chart's canvas goes
   * @param {string} route
   */
  constructor(container, route) {
    this.container = container
    this.#data = [[], ...SERIES.map(() => [])]
    /** @type {uPlot.Options} */
    const options = {
      title: `${route}: per second`,
      width: this.#width(),
      height: 220,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { label: 'per second', size: 56 }],
      series: [
        { label: 'Time' },
        ...SERIES.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: 2,
          ...(s.dash === undefined ? {} : { dash: [...s.dash] }),
          value: (/** @type {uPlot} */ _u, /** @type {number | null} */ v) => (v === null ? '–' : v.toFixed(1)),
        })),
      ],
      hooks: {
        draw: [
          () => {
            this.#draws++
            this.container.dataset.draws = String(this.#draws)
          },
        ],
      },
    }
    this.#plot = new uPlot(options, /** @type {uPlot.AlignedData} */ (this.#data), container)
  }

  /**
   * Add a point from the route's counters now (the first call only sets the baseline).
   * @param {number} at seconds since the epoch
   * @param {Counters} counters
   */
  push(at, counters) {
    const last = this.#last
    this.#last = { at, counters }
    if (last === undefined) return
    const seconds = Math.max(0.001, at - last.at)
    this.#data[0]?.push(at)
    SERIES.forEach((s, i) => {
      // A counter that went down means the gateway restarted: count from zero.
      const delta = counters[s.key] >= last.counters[s.key] ? counters[s.key] - last.counters[s.key] : counters[s.key]
      this.#data[i + 1]?.push(delta / seconds)
    })
    for (const column of this.#data) if (column.length > WINDOW) column.splice(0, column.length - WINDOW)
    this.#plot.setData(/** @type {uPlot.AlignedData} */ (this.#data))
  }

  resize() {
    this.#plot.setSize({ width: this.#width(), height: 220 })
  }

  destroy() {
    this.#plot.destroy()
  }

  #width() {
    return Math.max(280, Math.floor(this.container.clientWidth || 560))
  }
}
