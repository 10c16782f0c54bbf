// Idem's version, for the tracer's instrumentation scope: read once from the package.json three
// folders up (the same from src/ and from dist/); undefined if it cannot be read.

import { createRequire } from 'node:module'

function packageVersion(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url)('../../../package.json') as { name?: unknown; version?: unknown }
    return pkg.name === 'idem' && typeof pkg.version === 'string' ? pkg.version : undefined
  } catch {
    return undefined
  }
}

export const IDEM_VERSION: string | undefined = packageVersion()
