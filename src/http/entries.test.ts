import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const FRAMEWORKS = ['express', 'fastify', 'hono', '@hono/node-server', 'koa', 'koa2']

/** Loads an entry point in a fresh process and lists the CommonJS framework packages it pulled in. */
function frameworksLoadedBy(entry: string): string[] {
  const script = `
    await import(${JSON.stringify(entry)})
    const { createRequire } = await import('node:module')
    const cache = Object.keys(createRequire(import.meta.url).cache)
    console.log(JSON.stringify(${JSON.stringify(FRAMEWORKS)}.filter((d) => cache.some((p) => p.includes('/node_modules/' + d + '/')))))
  `
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root })
  return JSON.parse(out.toString().trim().split('\n').pop() as string)
}

it.each([
  ['idem', './src/index.ts'],
  ['idem/http', './src/http/index.ts'],
  ['idem/express', './src/http/express/index.ts'],
  ['idem/fastify', './src/http/fastify/index.ts'],
  ['idem/koa', './src/http/koa/index.ts'],
  ['idem/nestjs', './src/http/nestjs/index.ts'],
])('importing %s loads no framework', (_name, entry) => {
  expect(frameworksLoadedBy(entry)).toEqual([])
})

it('imports frameworks only as types in the library (Hono is ESM, so the cache check above cannot see it)', () => {
  const dir = fileURLToPath(new URL('.', import.meta.url))
  const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
    (file) => file.endsWith('.ts') && !file.includes('.test'),
  )
  expect(sources.length).toBeGreaterThan(10)
  for (const file of sources) {
    const text = readFileSync(join(dir, file), 'utf8')
    for (const match of text.matchAll(/^import (type )?[^'"]*from '([^'.][^']*)'/gm)) {
      const [, typeOnly, module] = match
      if (FRAMEWORKS.includes(module as string))
        expect({ file, module, typeOnly }).toEqual({ file, module, typeOnly: 'type ' })
    }
  }
})
