// Vitest itself fails a run on an unhandled rejection or an uncaught exception, even when every test
// passed (exit code 1, "Unhandled Errors"): so no setup file of ours records them. This proves it,
// with child runs of vitest over throwaway files, and shows the one way around it: any other
// 'unhandledRejection' listener (a test's or a library's) makes vitest assume the rejection is
// handled and say nothing, so no file or library of this repository may add one.

import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const vitestBin = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs')
const dirs: string[] = []

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
})

/** Run vitest over one test file made of `body` (globals on: the file imports nothing), in a directory of its own. */
async function childRun(body: string): Promise<{ code: number; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'idem-vitest-unhandled-'))
  dirs.push(dir)
  await writeFile(join(dir, 'throwaway.test.js'), body)
  const env = { ...process.env, CI: '', FORCE_COLOR: '0', NO_COLOR: '1' }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [vitestBin, 'run', '--root', dir, '--globals'],
      { env, cwd: dir },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
        resolve({ code, output: `${stdout}\n${stderr}` })
      },
    )
  })
}

const settle = 'await new Promise((resolve) => setTimeout(resolve, 50))'

describe('vitest and unhandled errors', () => {
  it('fails the run (exit code 1) on a rejection nobody handles, though the test passed', async () => {
    const { code, output } = await childRun(
      `test('passes', async () => { Promise.reject(new Error('leaked on purpose')); ${settle} })`,
    )
    expect(output).toMatch(/1 passed/)
    expect(output).toMatch(/Unhandled Rejection/)
    expect(output).toMatch(/leaked on purpose/)
    expect(code).toBe(1)
  }, 60_000)

  it('fails the run on an uncaught exception, and on a rejection handled only a turn later', async () => {
    const thrown = await childRun(
      `test('passes', async () => { setTimeout(() => { throw new Error('thrown on purpose') }, 1); ${settle} })`,
    )
    expect(thrown.output).toMatch(/thrown on purpose/)
    expect(thrown.code).toBe(1)
    const late = await childRun(
      `test('passes', async () => { const p = Promise.reject(new Error('late')); ${settle}; p.catch(() => {}) })`,
    )
    expect(late.code).toBe(1)
  }, 60_000)

  it('passes a run whose rejection is handled in the same turn', async () => {
    const { code } = await childRun(
      `test('passes', async () => { const p = Promise.reject(new Error('soon')); await Promise.resolve(); p.catch(() => {}) })`,
    )
    expect(code).toBe(0)
  }, 60_000)

  it('says nothing when something else listens to unhandledRejection: the gap no file here may open', async () => {
    const { code } = await childRun(
      `process.on('unhandledRejection', () => {}); test('passes', async () => { Promise.reject(new Error('hidden')); ${settle} })`,
    )
    expect(code).toBe(0)
  }, 60_000)
})

describe('the unhandled-error listeners of this repository', () => {
  it('are none: no source, test or example listens to unhandledRejection or uncaughtException', async () => {
    const root = fileURLToPath(new URL('../', import.meta.url))
    const self = fileURLToPath(import.meta.url)
    const listening =
      /process\s*\.\s*(on|once|addListener|prependListener)\s*\(\s*['"`](unhandledRejection|uncaughtException)/
    const offenders: string[] = []
    for (const top of ['src', 'test', 'examples']) {
      for (const entry of await readdir(join(root, top), { recursive: true, withFileTypes: true })) {
        if (!entry.isFile() || !/\.(ts|js|mjs|cjs)$/.test(entry.name)) continue
        const file = join(entry.parentPath, entry.name)
        if (file === self) continue
        if (listening.test(await readFile(file, 'utf8'))) offenders.push(relative(root, file))
      }
    }
    expect(offenders).toEqual([])
  })
})
