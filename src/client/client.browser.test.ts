// idem/client in a browser. First, without one: the entry bundles for the browser (esbuild, as
// scripts/build-dashboard.mjs bundles the dashboard) with nothing from Node or undici in it. Then,
// in Debian's Chromium driven by playwright-core: a checkout page whose Pay button is
// double-clicked charges once. The page makes one key per checkout, both clicks send it, the second
// waits out the first's 409 in-progress and gets its replay.
//
// Without /usr/bin/chromium (or IDEM_CHROMIUM) the Chromium suite is skipped with a warning, or
// fails under IDEM_REQUIRE_SERVICES=1.

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing } from '../../test/services.js'
import { type Shop, startShop } from '../../test/support/client/servers.test-helper.js'

const CHROMIUM = process.env.IDEM_CHROMIUM ?? '/usr/bin/chromium'
const HERE = fileURLToPath(new URL('.', import.meta.url))

/** The checkout page's script: one operation (one key) per checkout, however often Pay is clicked. */
const CHECKOUT = `
import { idempotencyInfo, idempotentFetch } from './index.ts'

const pay = idempotentFetch({ baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 40 })
const checkout = { key: crypto.randomUUID(), order: 'basket-1', amount: 42 }
const results = document.getElementById('results')

document.getElementById('pay').addEventListener('click', async () => {
  const response = await pay('/charges', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ order: checkout.order, amount: checkout.amount }),
    idempotencyKey: checkout.key,
  })
  const charge = await response.json()
  const info = idempotencyInfo(response)
  const item = document.createElement('li')
  item.textContent = JSON.stringify({ status: response.status, id: charge.id, replayed: info.replayed })
  results.append(item)
})
`

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Checkout</title></head>
<body><button id="pay">Pay 42 EUR</button><ul id="results"></ul><script src="/checkout.js"></script></body></html>`

async function bundle(contents: string, format: 'iife' | 'esm'): Promise<string> {
  const result = await build({
    stdin: { contents, resolveDir: HERE, loader: 'ts', sourcefile: 'checkout.ts' },
    bundle: true,
    write: false,
    format,
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  })
  return result.outputFiles[0]?.text ?? ''
}

describe('the idem/client bundle for browsers', () => {
  it('has every export and nothing from Node or undici', async () => {
    const code = await bundle("export * from './index.ts'", 'esm')
    expect(code).toContain('idempotentFetch')
    expect(code).toContain('idempotencyInterceptor')
    expect(code).not.toMatch(/\bnode:|from ["']undici["']|require\(|\bBuffer\./)
  })
})

if (!existsSync(CHROMIUM)) {
  reportMissing(
    'idem/client in Chromium',
    `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`,
    'charges once for a double-clicked Pay button',
  )
} else {
  describe('idem/client in Chromium', () => {
    let shop: Shop
    let browser: Browser

    beforeAll(async () => {
      shop = await startShop()
      const script = await bundle(CHECKOUT, 'iife')
      shop.app.get('/', (_req, res) => {
        res.type('html').send(PAGE)
      })
      shop.app.get('/checkout.js', (_req, res) => {
        res.type('js').send(script)
      })
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      })
    }, 60_000)

    afterAll(async () => {
      await browser?.close()
      await shop?.close()
    })

    it('charges once for a double-clicked Pay button', async () => {
      // The first charge takes a moment, as a real one does: the second click arrives while it runs.
      shop.state.gate = new Promise((resolve) => setTimeout(resolve, 300))
      const page = await browser.newPage()
      const errors: string[] = []
      page.on('pageerror', (error) => errors.push(error.message))
      await page.goto(shop.url)
      await page.dblclick('#pay')
      // A string, evaluated in the page: this file is type-checked without the DOM library.
      await page.waitForFunction("document.querySelectorAll('#results li').length === 2", undefined, {
        timeout: 10_000,
      })
      const results = (await page.locator('#results li').allTextContents()).map(
        (text) => JSON.parse(text) as { status: number; id: string; replayed: boolean },
      )
      expect(errors).toEqual([])
      expect(results.map((r) => r.status)).toEqual([201, 201])
      expect(new Set(results.map((r) => r.id)).size).toBe(1)
      expect(results.map((r) => r.replayed).sort()).toEqual([false, true])
      expect(shop.state.count('basket-1')).toBe(1)
      const keys = shop.state.received.filter((key) => key !== '')
      expect(keys.length).toBeGreaterThanOrEqual(2)
      expect(new Set(keys).size).toBe(1)
      await page.close()
    })
  })
}
