import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Loads an entry point in a fresh process and lists the driver packages it pulled in. */
function driversLoadedBy(entry: string): string[] {
  const script = `
    await import(${JSON.stringify(entry)})
    const { createRequire } = await import('node:module')
    const cache = Object.keys(createRequire(import.meta.url).cache)
    console.log(JSON.stringify(['better-sqlite3', 'pg', 'mysql2', 'ioredis'].filter((d) => cache.some((p) => p.includes('/node_modules/' + d + '/')))))
  `
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root })
  return JSON.parse(out.toString().trim().split('\n').pop() as string)
}

it('importing idem loads no database driver', () => {
  expect(driversLoadedBy('./src/index.ts')).toEqual([])
})

it.each([
  ['idem/sqlite', './src/stores/sqlite/index.ts'],
  ['idem/postgres', './src/stores/postgres/index.ts'],
  ['idem/mysql', './src/stores/mysql/index.ts'],
  ['idem/redis', './src/stores/redis/index.ts'],
  ['idem/tiered', './src/stores/tiered/index.ts'],
])('importing %s loads no driver until a store is built with one', (_name, entry) => {
  expect(driversLoadedBy(entry)).toEqual([])
})
