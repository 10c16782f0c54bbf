// What `npm publish` would ship: the build's output and the README, never a test, a test helper,
// a worker started by a test, or a file that imports the test runner.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TEST_FILE = /\.test\.ts$|test-helper|\.worker\.|\.child\.|(^|\/)(test|tests|__tests__|fixtures)\//

/** The sources `npm run build` compiles into dist/ (tsc's own answer, not a re-implementation of its rules). */
function builtSources(): string[] {
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url))
  const out = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  return out
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.includes('/node_modules/'))
    .map((line) => relative(ROOT, line))
}

describe('the published package', () => {
  const sources = builtSources()

  it('builds the shipped sources and nothing else', () => {
    expect(sources).toContain('src/index.ts')
    expect(sources.filter((file) => !file.startsWith('src/'))).toEqual([])
    expect(sources.filter((file) => TEST_FILE.test(file))).toEqual([])
  })

  it('ships no file that loads the test runner', () => {
    const loadsTests = sources.filter((file) =>
      /^\s*import[^\n]*from '(vitest|fast-check)'/m.test(readFileSync(`${ROOT}/${file}`, 'utf8')),
    )
    // idem/testing is the conformance suite users run on their own stores: it takes vitest's
    // functions as arguments instead of importing them.
    expect(loadsTests).toEqual([])
  })

  it('packs only the build output, the README and package.json', () => {
    const [pack] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' }),
    ) as [{ files: { path: string }[] }]
    const paths = pack.files.map((file) => file.path)
    expect(paths.filter((path) => !/^(dist\/|README\.md$|package\.json$|LICENSE)/.test(path))).toEqual([])
    expect(paths.filter((path) => TEST_FILE.test(path))).toEqual([])
  })
})
