// Fuzzing the gateway's config loader: any text (YAML, JSON, neither) and any object end in a valid
// config or a GatewayConfigError whose issues name where in the file, never another throw.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { GatewayConfigError, parseConfig, redactConfig, validateConfig } from './load-config.js'

/** A config that validates, in the shape a file has before defaults and durations are resolved. */
const BASE = {
  listen: { port: 8080 },
  upstream: { url: 'http://127.0.0.1:3000', timeout: '10s' },
  admin: { listen: { port: 9090 }, token: 'an-admin-token-of-enough-length' },
  stores: {
    main: { type: 'redis', url: 'redis://:devpassword@localhost:6379/0' },
    local: { type: 'sqlite', path: '/var/lib/idem/idem.db' },
  },
  defaults: { store: 'main', ttl: '12h' },
  routes: [
    {
      name: 'payments',
      match: { path: '/payments', methods: ['post'] },
      key: { body: 'payment.id' },
      required: true,
      fingerprint: { headers: ['X-Tenant'], body: ['amount', 'currency'] },
      rateLimit: { requests: 100, per: '1m', store: 'local' },
    },
    { name: 'orders', match: { path: '/orders/:id/*' }, mode: 'observe', lease: '500ms' },
    {
      name: 'refunds',
      match: { path: '/refunds' },
      store: 'local',
      onStoreFailure: 'open',
      signature: { secret: 'a-signature-secret-of-32-characters!', window: '2m' },
      principal: { jwt: { secret: 'a-jwt-secret-that-is-32-characters-long', issuer: 'https://auth.example.com' } },
    },
  ],
}

type Path = Array<string | number>

/** Every path in `value`, containers included, the root as []. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const paths: Path[] = [prefix]
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) paths.push(...pathsOf(item, [...prefix, i]))
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...prefix, key]))
  }
  return paths
}

/** `path` as the loader writes it: `routes[1].mode`, `stores.main.url`, `stores["my store"]`. */
function formatPath(path: Path): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) text += text === '' ? segment : `.${segment}`
    else text += `[${JSON.stringify(segment)}]`
  }
  return text
}

type Mutation = { kind: 'replace'; value: unknown } | { kind: 'delete' } | { kind: 'add'; key: string; value: unknown }

/** A deep copy of BASE with `mutation` applied at `path`. */
function mutated(path: Path, mutation: Mutation): unknown {
  const copy = structuredClone(BASE) as Record<string | number, unknown>
  if (path.length === 0) return mutation.kind === 'replace' ? mutation.value : copy
  const parent = path
    .slice(0, -1)
    .reduce<Record<string | number, unknown>>(
      (node, segment) => node[segment] as Record<string | number, unknown>,
      copy,
    )
  const last = path[path.length - 1] as string | number
  if (mutation.kind === 'replace') parent[last] = mutation.value
  else if (mutation.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1)
    else delete parent[last]
  } else {
    const target = parent[last]
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
      Object.defineProperty(target, mutation.key, {
        value: mutation.value,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
  }
  return copy
}

const anyValue = fc.oneof(
  fc.anything({ maxDepth: 2, withNullPrototype: true }),
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the loader's ${NAME} references, as a file writes them
  fc.constantFrom('', '0s', '-1s', '1y', 'http://', 'redis://', '${UNSET}', 70000, -1, 0.5, null, [], {}),
)
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  anyValue.map((value) => ({ kind: 'replace' as const, value })),
  fc.constant({ kind: 'delete' as const }),
  fc
    .tuple(
      fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'modes', 'stor')),
      anyValue,
    )
    .map(([key, value]) => ({ kind: 'add' as const, key, value })),
)
const paths = pathsOf(BASE)
const change = fc.tuple(fc.constantFrom(...paths), mutation)

/** The outcome of `load`: a config, or the GatewayConfigError's issues; anything else fails the test. */
function outcome(load: () => unknown): { config: unknown } | { issues: GatewayConfigError['issues'] } {
  try {
    return { config: load() }
  } catch (error) {
    if (!(error instanceof GatewayConfigError)) throw error
    expect(error.issues.length).toBeGreaterThan(0)
    for (const issue of error.issues) {
      expect(typeof issue.path).toBe('string')
      expect(issue.message).toMatch(/\S/)
    }
    return { issues: error.issues }
  }
}

const related = (a: string, b: string) => a === '' || b === '' || a.startsWith(b) || b.startsWith(a)

describe('the gateway config loader, fuzzed', () => {
  it('validates the base config the mutations start from', () => {
    expect('config' in outcome(() => validateConfig(BASE))).toBe(true)
    expect('config' in outcome(() => parseConfig(stringify(BASE), 'idem.yaml', {}))).toBe(true)
  })

  it('gives a config or a GatewayConfigError for any change to a valid object, naming the changed place', () => {
    fc.assert(
      fc.property(change, ([path, how]) => {
        const result = outcome(() => validateConfig(mutated(path, how), 'idem.yaml'))
        if ('config' in result) {
          expect(() => JSON.stringify(redactConfig(result.config as Parameters<typeof redactConfig>[0]))).not.toThrow()
          return
        }
        // A change made the config invalid: an issue is there, above it or below it, or names it
        // ("needed (or defaults.store)"), or is at a place that refers to a changed store's name.
        const at = formatPath(path)
        const named = result.issues.some(
          (issue) => related(issue.path, at) || (at !== '' && issue.message.includes(at)),
        )
        const refersToStore = path[0] === 'stores' || (how.kind === 'replace' && typeof how.value === 'string')
        if (!named && !refersToStore) {
          throw new Error(`no issue names ${at}: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`)
        }
      }),
      { numRuns: 200 },
    )
  })

  it('gives a config or a GatewayConfigError for any such object written as YAML or JSON', () => {
    fc.assert(
      fc.property(change, fc.boolean(), ([path, how], asJson) => {
        const value = mutated(path, how)
        let text: string
        try {
          text = asJson ? (JSON.stringify(value) ?? '') : stringify(value)
        } catch {
          return // a value neither format can write (a cycle, a BigInt) has no file to load
        }
        outcome(() => parseConfig(text, 'idem.yaml', { SET: 'value' }))
      }),
      { numRuns: 40 },
    )
  })

  it('gives a GatewayConfigError, never another throw, for any text at all', () => {
    const token = fc.constantFrom(
      'listen:',
      'routes:',
      '- ',
      '  ',
      '\n',
      '{',
      '}',
      '[',
      ']',
      ':',
      ',',
      '"',
      "'",
      '&a',
      '*a',
      '!!binary',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the loader's ${NAME} references, as a file writes them
      '${X}',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the loader's ${NAME} references, as a file writes them
      '${X:-1}',
      '$${',
      '#',
      '---',
      '...',
      '? ',
      '|',
      '>',
      'port: 8080',
      'stores: { a: { type: memory } }',
      '\t',
      '%YAML 1.2',
    )
    const yaml = stringify(BASE)
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.array(token, { maxLength: 30 }).map((parts) => parts.join('')),
      fc.tuple(fc.nat(), fc.string({ maxLength: 4 })).map(([at, insert]) => {
        const i = at % (yaml.length + 1)
        return yaml.slice(0, i) + insert + yaml.slice(i + 1)
      }),
    )
    fc.assert(
      fc.property(text, (source) => {
        outcome(() => parseConfig(source, 'idem.yaml', { X: 'x' }))
      }),
      { numRuns: 80 },
    )
  })
})
