// The layering of src/, checked: no import cycle between files or between folders, and every
// import between folders allowed by the table below (docs/architecture.md draws the same layers).
// The store contract and errors sit at the bottom, integrations at the top.

import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = fileURLToPath(new URL('../src', import.meta.url))

/**
 * Which top-level part of src/ may import which. A part is a folder of src/ (or `errors`, the
 * one file errors.ts); `index` is the root entry, which re-exports. Reading down the table is
 * reading up the layers.
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  drivers: [],
  contract: ['errors'],
  sql: ['errors', 'drivers', 'contract'],
  testing: ['errors', 'contract'],
  core: ['errors', 'contract', 'sql'],
  stores: ['errors', 'drivers', 'contract', 'sql'],
  guards: ['errors', 'contract', 'sql'],
  window: ['errors', 'drivers', 'contract'],
  producer: ['errors', 'contract', 'core'],
  consumer: ['errors', 'contract', 'core', 'sql', 'producer'],
  outbox: ['errors', 'drivers', 'contract', 'core', 'sql', 'producer'],
  http: ['errors', 'contract', 'core'],
  client: ['errors'],
  cdc: ['errors', 'core', 'sql'],
  brokers: ['errors', 'drivers', 'contract', 'core', 'sql', 'consumer', 'producer'],
  telemetry: ['errors', 'contract', 'core', 'consumer', 'http', 'outbox', 'producer'],
  audit: ['errors', 'drivers', 'contract'],
  gateway: ['errors', 'drivers', 'contract', 'core', 'http', 'stores', 'telemetry', 'audit'],
  cli: ['errors', 'contract', 'gateway', 'audit'],
  index: ['errors', 'contract', 'core', 'stores'],
}

/** Parts whose sub-folders are separate integrations: one may not import another (only their shared `core`). */
const INTEGRATIONS = new Set(['stores', 'brokers', 'http', 'sql', 'telemetry'])

/**
 * The few integrations built on a sibling: Express runs on node:http; Koa reads a body with node:http's
 * readBody; NestJS hooks the response of
 * its Express or Fastify platform with the node:http and Express captures; Knex and Drizzle wrap
 * the drivers' adapters.
 */
const BUILT_ON: Readonly<Record<string, readonly string[]>> = {
  'http/express': ['http/node'],
  'http/koa': ['http/node'],
  'http/nestjs': ['http/node', 'http/express'],
  'sql/knex': ['sql/pg', 'sql/mysql2'],
  'sql/drizzle': ['sql/pg', 'sql/mysql2', 'sql/better-sqlite3'],
}

interface Edge {
  from: string
  to: string
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : []
  })
}

/** Every relative import and re-export of the shipped files, type-only ones included. */
function importEdges(): Edge[] {
  const edges: Edge[] = []
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(
      /(?:^|\n)\s*(?:import|export)[^'"]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g,
    )) {
      const spec = (match[1] ?? match[2]) as string
      const target = normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts')
      edges.push({ from: relative(SRC, file), to: relative(SRC, target) })
    }
  }
  return edges
}

/** `core`, `errors`, `index`, or for an integration its sub-folder: `stores/redis`, `http/core`. */
function unitOf(file: string): string {
  const parts = file.split('/')
  if (parts.length === 1) return (parts[0] as string).replace(/\.ts$/, '')
  const top = parts[0] as string
  return INTEGRATIONS.has(top) && parts.length > 2 ? `${top}/${parts[1]}` : top
}

const partOf = (file: string): string => unitOf(file).split('/')[0] as string

/** The strongly connected components of more than one node (Tarjan), as sorted lists. */
function cycles(edges: readonly Edge[], node: (file: string) => string): string[][] {
  const graph = new Map<string, Set<string>>()
  for (const { from, to } of edges) {
    const a = node(from)
    const b = node(to)
    if (a === b) continue
    if (!graph.has(a)) graph.set(a, new Set())
    if (!graph.has(b)) graph.set(b, new Set())
    graph.get(a)?.add(b)
  }
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

describe('the layers of src/', () => {
  const edges = importEdges()

  it('finds the imports it checks', () => {
    expect(edges.length).toBeGreaterThan(100)
    expect(edges.some((edge) => edge.from === 'index.ts' && edge.to.startsWith('core/'))).toBe(true)
  })

  it('has no import cycle between files', () => {
    expect(cycles(edges, (file) => file)).toEqual([])
  })

  it('has no import cycle between folders', () => {
    expect(cycles(edges, unitOf)).toEqual([])
  })

  it('imports only downwards, as the table allows', () => {
    const forbidden = edges
      .filter(({ from, to }) => {
        const a = partOf(from)
        const b = partOf(to)
        if (a === b) return false
        const allowed = MAY_IMPORT[a]
        if (allowed === undefined) return true
        return !allowed.includes(b)
      })
      .map(({ from, to }) => `${from} -> ${to}`)
    expect(forbidden).toEqual([])
  })

  it('keeps each integration apart from its siblings', () => {
    const crossing = edges
      .filter(({ from, to }) => {
        const a = unitOf(from)
        const b = unitOf(to)
        if (a === b || !a.includes('/') || !b.includes('/') || partOf(from) !== partOf(to)) return false
        return !b.endsWith('/core') && !(BUILT_ON[a] ?? []).includes(b)
      })
      .map(({ from, to }) => `${from} -> ${to}`)
    expect(crossing).toEqual([])
  })

  it('names a layer for every folder of src/', () => {
    const unknown = [...new Set(edges.flatMap(({ from, to }) => [partOf(from), partOf(to)]))].filter(
      (part) => MAY_IMPORT[part] === undefined,
    )
    expect(unknown).toEqual([])
  })
})
