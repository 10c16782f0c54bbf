// The PromQL that docs/observability.md and docs/grafana/idem-dashboard.json give users, run
// against a real Prometheus (Debian's prometheus 2.42) scraping an exporter fed by real traffic
// through every part idem/metrics watches: each expression must parse and return samples, none NaN.
// The traffic runs twice with a scrape between, so that every counter has grown between two
// samples and rates, ratios and quantiles have values.

import { readFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing } from '../../../test/services.js'
import { FakeBroker } from '../../../test/support/consumer/fake-broker.test-helper.js'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import { RecordingProducer } from '../../../test/support/outbox/outbox-rigs.test-helper.js'
import {
  type MetricsExporter,
  missingBinary,
  type PrometheusServer,
  serveMetrics,
  startPrometheus,
} from '../../../test/support/telemetry/prometheus.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import { consumerHandle } from '../../consumer/handle.js'
import { fingerprintOf } from '../../core/fingerprint.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import type { HttpRequest } from '../../http/core/types.js'
import { Outbox } from '../../outbox/outbox.js'
import { OutboxRelay } from '../../outbox/relay.js'
import { fromBetterSqlite3 } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { ManualClock } from '../../testing/manual-clock.js'
import { ANOMALY_SOURCE, type Anomaly, type AnomalySource } from '../core/anomaly.js'
import { idemMetrics } from './index.js'

const DOCS = new URL('../../../docs/observability.md', import.meta.url)
const DASHBOARD = new URL('../../../docs/grafana/idem-dashboard.json', import.meta.url)

interface Expression {
  /** Where it comes from: the docs table's question, or the dashboard panel's title. */
  source: string
  expr: string
}

/** The PromQL column of the table under "PromQL for the questions users ask", `\|` unescaped. */
function docsExpressions(): Expression[] {
  const lines = readFileSync(DOCS, 'utf8').split('\n')
  const start = lines.findIndex((line) => line.startsWith('### PromQL for the questions users ask'))
  if (start < 0) throw new Error('no "PromQL for the questions users ask" section in docs/observability.md')
  const rows: string[] = []
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('|')) rows.push(line)
    else if (rows.length > 0) break
  }
  // rows[0] is the header, rows[1] the separator.
  return rows.slice(2).map((row) => {
    const cells = row.split(/(?<!\\)\|/).map((cell) => cell.trim())
    const [, question = '', promql = ''] = cells
    const code = /^`(.+)`$/.exec(promql)
    if (code?.[1] === undefined) throw new Error(`the PromQL cell of "${question}" is not one code span: ${promql}`)
    return { source: `docs: ${question}`, expr: code[1].replaceAll('\\|', '|') }
  })
}

interface Target {
  expr: string
  datasource?: { type?: string; uid?: string }
}
interface Panel {
  title: string
  type: string
  datasource?: { type?: string; uid?: string }
  targets?: Target[]
  panels?: Panel[]
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[]
  __requires: { type: string; id: string }[]
  id?: unknown
  schemaVersion: number
  panels: Panel[]
  templating?: { list: { name: string; type: string; query?: string; datasource?: { uid?: string } }[] }
}

function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
}

/** Every panel, those inside rows included. */
function panelsOf(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])])
}

/** A Grafana expression as Prometheus takes it: intervals as 1m, template variables as match-all regexes. */
function resolveGrafana(expr: string): string {
  return expr
    .replace(/\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}/g, '1m')
    .replace(/\$\{\w+(?::\w+)?\}|\$\w+/g, '.*')
}

function dashboardExpressions(): Expression[] {
  const board = dashboard()
  const expressions: Expression[] = []
  for (const panel of panelsOf(board.panels)) {
    for (const target of panel.targets ?? []) {
      expressions.push({ source: `dashboard: ${panel.title}`, expr: resolveGrafana(target.expr) })
    }
  }
  // A query variable's label_values(metric, label): the metric's series must carry the label.
  for (const variable of board.templating?.list ?? []) {
    const labels = /^label_values\((.+),\s*(\w+)\)$/.exec(variable.query ?? '')
    if (labels?.[1] !== undefined && labels[2] !== undefined) {
      expressions.push({
        source: `dashboard: variable $${variable.name}`,
        expr: `count by (${labels[2]}) (${resolveGrafana(labels[1])})`,
      })
    }
  }
  return expressions
}

describe('docs/grafana/idem-dashboard.json', () => {
  it('is importable anywhere: a DS_PROMETHEUS input used by every panel, target and variable, no instance id', () => {
    const board = dashboard()
    expect(board.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' })])
    expect(board.__requires.map((r) => r.id)).toEqual(expect.arrayContaining(['grafana', 'prometheus']))
    expect(board.id).toBeUndefined()
    expect(board.schemaVersion).toBeGreaterThanOrEqual(36)
    const panels = panelsOf(board.panels).filter((panel) => panel.type !== 'row')
    expect(panels.length).toBeGreaterThan(0)
    const datasources = [
      ...panels.map((panel) => [panel.title, panel.datasource?.uid]),
      ...panels.flatMap((panel) => (panel.targets ?? []).map((target) => [panel.title, target.datasource?.uid])),
      ...(board.templating?.list ?? []).map((variable) => [`$${variable.name}`, variable.datasource?.uid]),
    ]
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's placeholder for the input, not a template
    expect(datasources.filter(([, uid]) => uid !== '${DS_PROMETHEUS}')).toEqual([])
    expect(panels.filter((panel) => (panel.targets ?? []).length === 0).map((panel) => panel.title)).toEqual([])
  })
})

const missing = await missingBinary('prometheus')
if (missing !== undefined) {
  reportMissing('the PromQL of the docs and the dashboard', missing, 'has prometheus (Debian package prometheus)')
} else {
  describe('the PromQL of the docs and the dashboard', () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const connection = new Database(':memory:')
    let exporter: MetricsExporter | undefined
    let prometheus: PrometheusServer | undefined

    beforeAll(async () => {
      exporter = await serveMetrics(registry)
      prometheus = await startPrometheus(exporter.target)
    }, 60_000)

    afterAll(async () => {
      await prometheus?.stop()
      exporter?.close()
      metrics.close()
      connection.close()
    })

    /** Resolves once `count` scrapes started after now; all but the last of them are complete. */
    function scrapesAfterNow(count: number): Promise<void> {
      return (exporter as MetricsExporter).scrapesAfterNow(count, 15_000)
    }

    // Idempotency on MemoryStore: new keys, duplicates, a mismatch, a takeover.
    const clock = new ManualClock()
    const store = new MemoryStore({ clock: clock.now })
    const billing = new Idempotency({
      store,
      scope: 'billing',
      isFinal: (error) => error instanceof Error && error.message === 'poison',
    })
    metrics.watch(billing)
    // A failing store: one call runs unprotected (failOpen), one is refused (store_unavailable).
    const faulty = new FaultyStore(new MemoryStore())
    const open = new Idempotency({ store: faulty, scope: 'open', failOpen: true })
    const closed = new Idempotency({ store: faulty, scope: 'closed' })
    metrics.watch(open)
    metrics.watch(closed)
    // HTTP: executed, replayed, rejected (a mismatch) and released.
    const http = new HttpIdempotency({ store: new MemoryStore() })
    metrics.watch(http)
    // A consumer on a fake broker, watched through a handle whose broker tells the lag.
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem: billing,
      handler: (payload) => {
        if (payload.n < 0) throw new Error('poison')
        return payload.n
      },
    })
    const lifecycle = { close: async () => {}, done: Promise.resolve() }
    metrics.watch(consumerHandle(consumer, { rejected: 0 }, lifecycle, { lag: async () => 42 }), { name: 'shipping' })
    const broker = new FakeBroker<{ n: number }>()
    // An outbox relay on SQLite; a row it never gets to stays pending (and old).
    const db = fromBetterSqlite3(connection)
    const outbox = new Outbox()
    const relay = new OutboxRelay({ outbox, db, producer: new RecordingProducer(), retention: false })
    metrics.watch(relay, { name: 'orders' })
    // An anomaly source raised by hand.
    const listeners: ((anomaly: Anomaly) => void)[] = []
    const detector: AnomalySource = {
      [ANOMALY_SOURCE]: true,
      on: (_name, listener) => {
        listeners.push(listener)
        return () => {}
      },
    }
    metrics.watch(detector)

    async function settle(key: string, n: number): Promise<string> {
      broker.publish(key, { n })
      const [delivery] = broker.take(1)
      if (delivery === undefined) throw new Error('no delivery')
      return (await consumer.handle(delivery)).outcome
    }

    async function send(key: string, body: unknown, status = 201): Promise<string> {
      const request: HttpRequest = {
        method: 'POST',
        url: '/orders',
        route: '/orders',
        headers: { 'content-type': 'application/json', authorization: 'Bearer alice', 'idempotency-key': key },
        body,
      }
      const decision = await http.decide(request)
      if (decision.action === 'proceed') {
        decision.capture.write('{"id":1}')
        await decision.capture.end(status, [['content-type', 'application/json']])
      }
      return decision.action
    }

    /** The same traffic, on keys of its own, each time. */
    async function traffic(round: number): Promise<void> {
      const key = (name: string) => `${name}-${round}`
      for (const name of ['a', 'b', 'c']) await billing.run({ key: key(name), payload: { name } }, () => name)
      for (const name of ['a', 'b']) await billing.run({ key: key(name), payload: { name } }, () => 'not run')
      await expect(billing.run({ key: key('a'), payload: { name: 'other' } }, () => 'x')).rejects.toThrow()
      // A worker claimed with a 1 s lease and stalled: the lease lapses and the next call takes over.
      await store.begin(billing.recordId(key('stalled')), fingerprintOf(undefined), 1000, 60_000)
      clock.advance(1001)
      expect(await billing.run({ key: key('stalled') }, () => 'recovered')).toMatchObject({ status: 'executed' })

      faulty.fail('begin', 2)
      expect(await open.run({ key: key('o') }, () => 1)).toMatchObject({ failedOpen: true })
      await expect(closed.run({ key: key('c') }, () => 1)).rejects.toThrow()

      expect(await send(key('h1'), { amount: 1 })).toBe('proceed')
      expect(await send(key('h1'), { amount: 1 })).not.toBe('proceed') // replayed
      expect(await send(key('h1'), { amount: 2 })).not.toBe('proceed') // 422
      expect(await send(key('h2'), { amount: 1 }, 503)).toBe('proceed') // released

      expect(await settle(key('m1'), 1)).toBe('executed')
      expect(await settle(key('m1'), 1)).toBe('replayed')
      expect(await settle(key('m2'), -1)).toBe('dead_lettered')

      await db.transaction(async (_tx, sql) => {
        for (const name of ['r1', 'r2']) await outbox.add(sql, { id: key(name), payload: { name } })
      })
      expect((await relay.runOnce()).published).toBeGreaterThanOrEqual(2) // and the last round's late row
      // Added after the run and dated an hour back: pending, and older than the alert's minute.
      await db.transaction((_tx, sql) => outbox.add(sql, { id: key('late'), payload: {} }))
      connection.prepare('UPDATE idem_outbox SET created_at = created_at - 3600000 WHERE id = ?').run(key('late'))

      for (const listener of listeners) {
        for (const kind of ['replays', 'mismatches'] as const) {
          listener({ kind, subject: 'scope', scope: 'billing', rate: 9, baseline: 1, at: Date.now() })
        }
      }
    }

    interface QueryResult {
      status: string
      error?: string
      data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }
    }

    async function query(expr: string): Promise<QueryResult> {
      const server = prometheus as PrometheusServer
      const response = await fetch(`${server.url}/api/v1/query?query=${encodeURIComponent(expr)}`)
      return (await response.json()) as QueryResult
    }

    /** Why `expr` fails, or undefined when it returned samples with values. */
    async function problem(expr: string): Promise<string | undefined> {
      const body = await query(expr)
      if (body.status !== 'success') return `${body.status}: ${body.error}`
      const result = body.data?.result ?? []
      if (body.data?.resultType !== 'vector') return `a ${body.data?.resultType}, not a vector`
      if (result.length === 0) return 'no samples'
      const nan = result.filter((sample) => Number.isNaN(Number(sample.value[1])))
      if (nan.length > 0) return `NaN for ${nan.map((sample) => JSON.stringify(sample.metric)).join(', ')}`
      return undefined
    }

    it('every expression of the docs table and the dashboard parses and returns samples', async () => {
      await outbox.ensureSchema(db)
      await traffic(1)
      await scrapesAfterNow(2) // one complete scrape holds round 1
      await traffic(2)
      await scrapesAfterNow(3) // two complete scrapes hold round 2

      expect(await problem('up{job="idem"} == 1')).toBeUndefined()
      const docs = docsExpressions()
      const board = dashboardExpressions()
      expect(docs.length).toBeGreaterThanOrEqual(10)
      expect(board.length).toBeGreaterThanOrEqual(14)

      const failures: string[] = []
      for (const { source, expr } of [...docs, ...board]) {
        const why = await problem(expr)
        if (why !== undefined) failures.push(`${source}\n    ${expr}\n    → ${why}`)
      }
      expect(failures, `failing expressions:\n${failures.join('\n')}`).toEqual([])

      // The scenario's values come through, the alert included.
      expect((await query('max by (relay) (idem_outbox_oldest_pending_seconds) > 60')).data?.result).toHaveLength(1)
    }, 30_000)
  })
}
