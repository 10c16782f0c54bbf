// Which route a request belongs to: the first route, in the order of the file, whose methods
// include the request's and whose path pattern matches its path.

/** A compiled path pattern: literal segments, `:name` for exactly one segment, a final `*` for the rest (none included). */
export type PathMatcher = (path: string) => boolean

export function compilePath(pattern: string): PathMatcher {
  const segments = pattern.split('/').slice(1)
  const rest = segments.at(-1) === '*'
  const fixed = rest ? segments.slice(0, -1) : segments
  // A pattern without parameters or a wildcard is a string comparison.
  if (!rest && fixed.every((s) => !s.startsWith(':'))) return (path) => path === pattern
  return (path) => {
    const parts = path.split('/').slice(1)
    if (rest ? parts.length < fixed.length : parts.length !== fixed.length) return false
    for (let i = 0; i < fixed.length; i++) {
      const want = fixed[i] as string
      const got = parts[i] as string
      if (want.startsWith(':') ? got === '' : want !== got) return false
    }
    return true
  }
}

export interface Matchable {
  readonly methods: ReadonlySet<string>
  readonly matches: PathMatcher
}

/** The routes in file order; `match` is the first that takes (method, path), or undefined. */
export class RouteTable<R extends Matchable> {
  readonly routes: readonly R[]
  readonly #byName: ReadonlyMap<string, R>

  constructor(routes: readonly R[], nameOf: (route: R) => string) {
    this.routes = routes
    this.#byName = new Map(routes.map((route) => [nameOf(route), route]))
  }

  match(method: string, path: string): R | undefined {
    for (const route of this.routes) if (route.methods.has(method) && route.matches(path)) return route
    return undefined
  }

  byName(name: string): R | undefined {
    return this.#byName.get(name)
  }
}

/** The path of a request target, without its query; `%2F` stays encoded so it cannot forge a segment. */
export function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}
