// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
// gateway (memory store) in front of the counting upstream: the token form, the live counters and
// charts, the key inspector and its purge, the guarded observe → enforce switch, breakers, the
// audit log's absence, a 401 mid-session, all by what the page shows and what the upstream counts.
// Then a gateway with an audit log (a file) and a controllable clock for its anomaly detector: the
// audit trail shows the traffic's keys and verifies OK, an anomaly provoked by a burst of replays
// is listed, and one byte flipped in an entry's body in the middle of the file turns it BROKEN.
// Screenshots of the main views go to artifacts/dashboard/ (git-ignored).
//
// Without /usr/bin/chromium the suite is skipped with a warning, or fails under IDEM_REQUIRE_SERVICES=1.

import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing } from '../../../test/services.js'
import { startUpstream, type Upstream } from '../../../test/support/gateway/upstream.test-helper.js'
import { generateAuditKey, generateSigningKeyPair } from '../../audit/keys.js'
import { createGateway, type Gateway } from '../gateway.js'
import { DASHBOARD_CSP } from './serve-dashboard.js'

const CHROMIUM = process.env.IDEM_CHROMIUM ?? '/usr/bin/chromium'
const TOKEN = 'dashboard-admin-token-for-tests'
const SHOTS = fileURLToPath(new URL('../../../artifacts/dashboard/', import.meta.url))

/**
 * A gateway whose admin port serves the dashboard first, as admin.ts will with its hook
 * `if (serveDashboard(req, res)) return` before the token check.
 */
async function gatewayWithDashboard(upstream: Upstream): Promise<{ gateway: Gateway; url: string; admin: string }> {
  const gateway = await createGateway({
    listen: { port: 0 },
    upstream: { url: upstream.url, timeout: '5s' },
    admin: { listen: { port: 0 }, token: TOKEN },
    stores: { main: { type: 'memory' } },
    defaults: { store: 'main' },
    routes: [
      { name: 'orders', match: { methods: ['POST'], path: '/orders' } },
      { name: 'slow', match: { methods: ['POST'], path: '/slow' } },
      { name: 'observed', match: { methods: ['POST'], path: '/observed' }, mode: 'observe' },
    ],
  })
  const { url, adminUrl } = await gateway.listen()
  return { gateway, url, admin: adminUrl as string }
}

if (!existsSync(CHROMIUM)) {
  reportMissing(
    'the dashboard in Chromium',
    `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`,
    'runs in Chromium',
  )
} else {
  describe('the dashboard in Chromium', () => {
    let upstream: Upstream
    let gw: { gateway: Gateway; url: string; admin: string }
    let browser: Browser
    let page: Page
    const consoleErrors: string[] = []
    const apiCalls: Array<{ path: string; authorization: string | undefined }> = []

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true })
      upstream = await startUpstream()
      gw = await gatewayWithDashboard(upstream)
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      })
      page = await browser.newPage({ viewport: { width: 1366, height: 900 } })
      page.on('console', (message) => {
        // Chromium logs every 4xx fetch ("Failed to load resource"); the 401 and 404 here are expected.
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
          consoleErrors.push(message.text())
        }
      })
      page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`))
      page.on('request', (request) => {
        const { pathname } = new URL(request.url())
        apiCalls.push({ path: pathname, authorization: request.headers().authorization })
      })
    }, 60_000)

    afterAll(async () => {
      await browser?.close()
      await gw?.gateway.close()
      await upstream?.stop()
    })

    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${gw.admin}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } })

    async function modeOf(route: string): Promise<string> {
      const body = (await (await admin('/v1/routes')).json()) as { routes: Array<{ name: string; mode: string }> }
      return body.routes.find((r) => r.name === route)?.mode ?? 'missing'
    }

    const post = (path: string, key: string) =>
      fetch(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ id: key }),
      })

    async function executions(key: string): Promise<number> {
      return (await upstream.executions()).byKey[key] ?? 0
    }

    const counter = (route: string, name: string) => page.textContent(`[data-route="${route}"][data-counter="${name}"]`)

    /** An expression evaluated in the page (a string: this file is compiled without the DOM's types). */
    const inPage = <T>(expression: string) => page.evaluate(expression) as Promise<T>
    const storedToken = () => inPage<string | null>("sessionStorage.getItem('idem-admin-token')")
    const blur = () => inPage<void>('document.activeElement?.blur()')

    /** Press Tab until the focused element matches `selector`. */
    async function tabTo(selector: string, max = 120): Promise<void> {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab')
        if (await inPage<boolean>(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) return
      }
      throw new Error(`${selector} was not reached with ${max} presses of Tab`)
    }

    const focused = () => inPage<string>('document.activeElement?.id || document.activeElement?.textContent')

    it('serves the page, its script and styles without a token, under a strict CSP, with no secret in them', async () => {
      for (const [path, type] of [
        ['/dashboard', 'text/html'],
        ['/dashboard/app.js', 'text/javascript'],
        ['/dashboard/app.css', 'text/css'],
      ] as const) {
        const response = await fetch(`${gw.admin}${path}`)
        expect(response.status).toBe(200)
        expect(response.headers.get('content-type')).toContain(type)
        expect(response.headers.get('content-security-policy')).toBe(DASHBOARD_CSP)
        const text = await response.text()
        expect(text).not.toContain(TOKEN)
        if (path === '/dashboard') expect(text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
      }
      expect(DASHBOARD_CSP).toContain("default-src 'self'")
      expect(DASHBOARD_CSP).not.toContain('unsafe-inline')
      // The API still wants the token.
      expect((await fetch(`${gw.admin}/v1/routes`)).status).toBe(401)
    })

    it('asks for the token, refuses a wrong one and opens with the right one, all by keyboard', async () => {
      await page.goto(`${gw.admin}/dashboard`)
      await page.waitForSelector('#token', { state: 'visible' })
      await page.screenshot({ path: `${SHOTS}login.png` })
      expect(await page.isHidden('#app')).toBe(true)

      await blur()
      await tabTo('#token')
      await page.keyboard.type('not-the-token')
      await page.keyboard.press('Enter')
      await expect.poll(() => page.textContent('#login-error')).toContain('refused')
      expect(await storedToken()).toBeNull()
      expect(await page.isHidden('#app')).toBe(true)

      await page.focus('#token')
      await page.keyboard.type(TOKEN)
      await tabTo('#login-form button[type="submit"]')
      await page.keyboard.press('Enter')
      await page.waitForSelector('#app', { state: 'visible' })
      expect(await page.isHidden('#login')).toBe(true)
      expect(await storedToken()).toBe(TOKEN)
      await page.waitForSelector('[data-route="orders"][data-counter="requests"]')
      // The token never went into the page's address or storage other than this tab's session.
      expect(page.url()).not.toContain(TOKEN)
      expect(await inPage<number>('localStorage.length + document.cookie.length')).toBe(0)
    })

    it('moves the counters and redraws the charts as duplicates arrive, without a reload', async () => {
      const navigations: string[] = []
      page.on('framenavigated', (frame) => navigations.push(frame.url()))
      const canvas = '[data-chart="orders"] canvas'
      await page.waitForSelector(canvas)
      const pixels = () => inPage<string>(`document.querySelector('${canvas}').toDataURL()`)
      const before = await pixels()
      const drawsBefore = Number(await page.getAttribute('[data-chart="orders"]', 'data-draws'))
      expect(await counter('orders', 'requests')).toBe('0')

      const key = `dash-${Date.now()}`
      expect((await post('/orders', key)).status).toBe(201)
      for (let i = 0; i < 3; i++) {
        const duplicate = await post('/orders', key)
        expect(duplicate.headers.get('idempotent-replayed')).toBe('true')
      }
      // An in-progress conflict: the same key again while the first is still running upstream.
      const slowKey = `slow-${Date.now()}`
      const first = post('/slow?ms=1500', slowKey)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect((await post('/slow?ms=1500', slowKey)).status).toBe(409)
      expect((await first).status).toBe(201)

      await expect.poll(() => counter('orders', 'requests'), { timeout: 5000 }).toBe('4')
      await expect.poll(() => counter('orders', 'replayed'), { timeout: 5000 }).toBe('3')
      expect(await counter('orders', 'rejected')).toBe('0')
      await expect.poll(() => counter('slow', 'inProgress'), { timeout: 5000 }).toBe('1')
      expect(await counter('slow', 'rejected')).toBe('1')
      expect(await executions(key)).toBe(1)

      await expect
        .poll(async () => Number(await page.getAttribute('[data-chart="orders"]', 'data-draws')), { timeout: 5000 })
        .toBeGreaterThan(drawsBefore)
      await expect.poll(pixels).not.toBe(before)
      expect(navigations).toEqual([])
      // The routes table agrees with the counters.
      expect(await page.textContent('[data-route-row="orders"] td:nth-of-type(6)')).toBe('3')
      await page.screenshot({ path: `${SHOTS}traffic.png` })
    })

    it('inspects a key the test created, and purging it lets the next request execute again', async () => {
      const key = `inspect-${Date.now()}`
      expect((await post('/orders', key)).status).toBe(201)
      expect(await executions(key)).toBe(1)

      await page.selectOption('#key-route', 'orders')
      await page.fill('#key-key', key)
      await page.click('#key-form button[type="submit"]')
      await page.waitForSelector('[data-field="state"]')
      expect(await page.textContent('[data-field="state"]')).toBe('completed')
      expect(await page.textContent('[data-field="attempt"]')).toBe('1')
      expect(await page.textContent('[data-field="expires"]')).toMatch(/\d{4}-\d\d-\d\dT/)
      expect(await page.textContent('[data-field="status"]')).toContain('Status 201, application/json')
      // The stored body, decoded: the upstream's answer to this execution.
      expect(await page.textContent('[data-field="body"]')).toContain(`"echo":{"id":"${key}"}`)
      await page.locator('#keys').screenshot({ path: `${SHOTS}key-inspector.png` })

      // Cancel first: nothing is purged.
      await page.click('#purge')
      expect(await page.textContent('#confirm-title')).toContain(key)
      await page.click('#confirm-cancel')
      expect((await admin(`/v1/keys/orders/${key}`)).status).toBe(200)

      await page.click('#purge')
      await page.click('#confirm-ok')
      await page.waitForSelector('[data-key-state="purged"]')
      expect((await admin(`/v1/keys/orders/${key}`)).status).toBe(404)

      const again = await post('/orders', key)
      expect(again.status).toBe(201)
      expect(again.headers.get('idempotent-replayed')).toBeNull()
      expect(await executions(key)).toBe(2)

      // An unknown key says so.
      await page.fill('#key-key', `${key}-never-sent`)
      await page.click('#key-form button[type="submit"]')
      await page.waitForSelector('[data-key-state="absent"]')
    })

    it('switches a route from observe to enforce through the guarded switch, by keyboard', async () => {
      const observedKey = `observe-${Date.now()}`
      await post('/observed', observedKey)
      const forwarded = await post('/observed', observedKey)
      expect(forwarded.headers.get('idempotent-replayed')).toBeNull()
      expect(await executions(observedKey)).toBe(2)
      await expect.poll(() => page.textContent('[data-route-row="observed"] td:nth-of-type(7)')).toBe('1')

      const button = '[data-switch="observed"]'
      expect(await page.textContent(button)).toBe('Switch to enforce')
      await blur()
      await tabTo(button)
      await page.keyboard.press('Enter')
      await page.waitForSelector('#confirm[open]')
      const title = await page.textContent('#confirm-title')
      expect(title).toContain('observed')
      expect(title).toContain('from observe to enforce')
      expect(await focused()).toBe('confirm-cancel')
      await page.screenshot({ path: `${SHOTS}switch-confirm.png` })

      // Escape backs out: the mode stays, focus returns to the switch.
      await page.keyboard.press('Escape')
      await page.waitForSelector('#confirm[open]', { state: 'detached' })
      expect(await modeOf('observed')).toBe('observe')
      expect(await inPage<string>('document.activeElement?.dataset.switch')).toBe('observed')

      await page.keyboard.press('Enter')
      await page.waitForSelector('#confirm[open]')
      await page.keyboard.press('Tab')
      expect(await focused()).toBe('confirm-ok')
      expect(await page.textContent('#confirm-ok')).toBe('Switch observed to enforce')
      await page.keyboard.press('Enter')
      await expect.poll(() => modeOf('observed')).toBe('enforce')
      await expect.poll(() => page.textContent('#announcer')).toContain('observed is now in enforce mode')
      await expect.poll(() => page.textContent(button)).toBe('Switch to observe')
      expect(await page.textContent('[data-route-row="observed"] td:nth-of-type(1)')).toBe('enforce')

      const enforcedKey = `enforce-${Date.now()}`
      expect((await post('/observed', enforcedKey)).status).toBe(201)
      const duplicate = await post('/observed', enforcedKey)
      expect(duplicate.headers.get('idempotent-replayed')).toBe('true')
      expect(await executions(enforcedKey)).toBe(1)
    })

    it('shows the breakers per store and that no audit log is configured', async () => {
      expect(await page.textContent('[data-breaker="main"] td[data-state]')).toBe('closed')
      await expect.poll(() => page.textContent('#audit-body')).toContain('No audit log configured')
      await page.waitForSelector('#trail-state[data-verify="absent"]', { timeout: 5000 })
      expect(await page.textContent('#trail-state')).toContain('Not configured')
      expect(await page.isHidden('#trail-table')).toBe(true)
      for (const path of ['/v1/audit/verify', '/v1/audit/entries']) expect((await admin(path)).status).toBe(404)
      // No anomaly on this gateway's ordinary traffic (its detector is still learning anyway).
      expect(await (await admin('/v1/anomalies')).json()).toEqual([])
      expect(await page.isVisible('#anomalies-empty')).toBe(true)
      await page.screenshot({ path: `${SHOTS}dashboard.png`, fullPage: true })
    })

    it('shows the audit log counters when the gateway keeps one', async () => {
      const audit = {
        stats: { queued: 0, blocked: 0, written: 42, dropped: 0, checkpoints: 3, lastSeq: 45, errors: 0 },
        lastSeq: 45,
      }
      const other = await browser.newPage()
      await other.route('**/v1/audit', (route) =>
        route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(audit) }),
      )
      await other.goto(`${gw.admin}/dashboard`)
      await other.fill('#token', TOKEN)
      await other.press('#token', 'Enter')
      await other.waitForSelector('[data-audit="lastSeq"]')
      expect(await other.textContent('[data-audit="lastSeq"]')).toBe('45')
      expect(await other.textContent('[data-audit="written"]')).toBe('42')
      await other.close()
    })

    it('goes back to the token form when the gateway answers 401', async () => {
      await inPage<void>("sessionStorage.setItem('idem-admin-token', 'revoked')")
      await page.waitForSelector('#login', { state: 'visible', timeout: 5000 })
      expect(await page.textContent('#login-error')).toContain('401')
      expect(await page.isHidden('#app')).toBe(true)
      expect(await storedToken()).toBeNull()
      expect(await focused()).toBe('token')
    })

    it('sent the token on every admin API call and raised no script or CSP error', () => {
      const calls = apiCalls.filter((call) => call.path.startsWith('/v1/'))
      expect(calls.length).toBeGreaterThan(5)
      expect(calls.filter((call) => call.authorization?.startsWith('Bearer ') !== true)).toEqual([])
      expect(apiCalls.filter((call) => call.path.startsWith('/dashboard') && call.authorization !== undefined)).toEqual(
        [],
      )
      expect(consoleErrors).toEqual([])
    })
  })

  describe('the audit trail and the anomalies in Chromium', () => {
    const WINDOW = 10_000
    let upstream: Upstream
    let gateway: Gateway
    let url: string
    let adminUrl: string
    let dir: string
    let logFile: string
    let browser: Browser
    let page: Page
    const consoleErrors: string[] = []
    /** The anomaly detector's clock: moved a window at a time by the test. */
    let clock = Date.UTC(2026, 0, 1)

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true })
      upstream = await startUpstream()
      dir = mkdtempSync(join(tmpdir(), 'idem-dashboard-audit-'))
      logFile = join(dir, 'audit.jsonl')
      const signing = generateSigningKeyPair()
      gateway = await createGateway(
        {
          listen: { port: 0 },
          upstream: { url: upstream.url, timeout: '5s' },
          admin: { listen: { port: 0 }, token: TOKEN },
          metrics: false,
          stores: { main: { type: 'memory' } },
          defaults: { store: 'main' },
          routes: [{ name: 'orders', match: { methods: ['POST'], path: '/orders' } }],
          audit: {
            file: logFile,
            sync: 'none',
            keys: `k1:${generateAuditKey()}`,
            signingKey: { id: 's1', privateKey: signing.privateKeyPem },
            checkpoint: { everyEntries: 4 },
          },
        },
        // The detector's defaults learn for 5 minutes (30 windows of 10 s): too long for a test, so
        // 2 windows of warm-up, 5 events at least, on a clock the test moves.
        { anomalies: { window: WINDOW, warmup: 2, minEvents: 5, now: () => clock } },
      )
      ;({ url, adminUrl } = (await gateway.listen()) as { url: string; adminUrl: string })
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      })
      page = await browser.newPage({ viewport: { width: 1366, height: 900 } })
      page.on('console', (message) => {
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
          consoleErrors.push(message.text())
        }
      })
      page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`))
    }, 60_000)

    afterAll(async () => {
      await browser?.close()
      await gateway?.close()
      await upstream?.stop()
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    })

    const admin = (path: string) => fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    const post = (key: string) =>
      fetch(`${url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ id: key }),
      })

    /** Until the log has written everything it was given (the decisions are recorded after the responses). */
    async function written(atLeast: number): Promise<void> {
      await expect
        .poll(
          async () => {
            const status = (await (await admin('/v1/audit')).json()) as { lastSeq: number; stats: { queued: number } }
            return status.stats.queued === 0 && status.lastSeq >= atLeast
          },
          { timeout: 5000 },
        )
        .toBe(true)
    }

    it('lists the traffic in the audit trail with its keys, and the log verifies OK', async () => {
      const key = `trail-${Date.now()}`
      expect((await post(key)).status).toBe(201)
      expect((await post(key)).headers.get('idempotent-replayed')).toBe('true')
      await written(2)

      await page.goto(`${adminUrl}/dashboard`)
      await page.fill('#token', TOKEN)
      await page.press('#token', 'Enter')
      await page.waitForSelector('#app', { state: 'visible' })

      const rows = page.locator('#trail-body tr', { has: page.locator(`td[data-col="key"]:text-is("${key}")`) })
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2)
      // Newest first: the replay, then the execution, on the route, with the upstream's status.
      expect(await rows.nth(0).locator('td[data-col="type"]').textContent()).toBe('replayed')
      expect(await rows.nth(1).locator('td[data-col="type"]').textContent()).toBe('executed')
      expect(await rows.nth(1).locator('td[data-col="route"]').textContent()).toBe('orders')
      expect(await rows.nth(1).locator('td[data-col="status"]').textContent()).toBe('201')
      const newerSeq = Number(await rows.nth(0).getAttribute('data-seq'))
      expect(newerSeq).toBeGreaterThan(Number(await rows.nth(1).getAttribute('data-seq')))

      await page.waitForSelector('#trail-state[data-verify="ok"]', { timeout: 10_000 })
      expect(await page.textContent('#trail-state')).toContain('OK')
      expect(Number(await page.textContent('[data-trail="entries"]'))).toBeGreaterThanOrEqual(2)
      // The table has real headers for screen readers, and the state is a live region.
      expect(await page.locator('#trail-table th[scope="col"]').allTextContents()).toEqual([
        'Seq',
        'Time',
        'Type',
        'Route',
        'Key',
        'Code',
        'Status',
      ])
      expect(await page.getAttribute('#trail-state', 'aria-live')).toBe('polite')

      // The API behind it: the same entries, decrypted; the same verification.
      const entries = (await (await admin(`/v1/audit/entries?limit=2&route=orders`)).json()) as Array<{
        key?: string
        type: string
      }>
      expect(entries.map((entry) => [entry.type, entry.key])).toEqual([
        ['replayed', key],
        ['executed', key],
      ])
      const verification = (await (await admin('/v1/audit/verify')).json()) as { ok: boolean; entries: number }
      expect(verification.ok).toBe(true)
      await page.locator('#trail').screenshot({ path: `${SHOTS}audit-trail.png` })
    })

    it('lists an anomaly provoked by a burst of replays', async () => {
      expect(await page.isVisible('#anomalies-empty')).toBe(true)
      expect(await (await admin('/v1/anomalies')).json()).toEqual([])
      let n = 0
      // Ordinary traffic for the warm-up windows: new keys, no duplicate.
      for (let window = 0; window < 3; window++) {
        for (let i = 0; i < 6; i++) expect((await post(`calm-${Date.now()}-${n++}`)).status).toBe(201)
        clock += WINDOW
      }
      // Then one key replayed over and over in one window: a client stuck in a retry loop.
      const looping = `loop-${Date.now()}`
      expect((await post(looping)).status).toBe(201)
      for (let i = 0; i < 8; i++) expect((await post(looping)).headers.get('idempotent-replayed')).toBe('true')

      const row = page.locator('#anomalies-body tr').first()
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1)
      expect(await row.locator('td[data-col="kind"]').textContent()).toBe('replays')
      expect(await row.locator('td[data-col="scope"]').textContent()).toContain('orders')
      expect(await row.locator('td[data-col="detail"]').textContent()).toContain('ongoing')
      expect(await page.isHidden('#anomalies-empty')).toBe(true)
      await expect.poll(() => page.textContent('#announcer')).toContain('Anomaly: replays')
      const listed = (await (await admin('/v1/anomalies')).json()) as Array<{ kind: string; scope: string }>
      expect(listed[0]).toMatchObject({ kind: 'replays' })
      await page.locator('#anomalies').screenshot({ path: `${SHOTS}anomalies.png` })
    })

    it('shows the log BROKEN, naming the entry, once a byte of an entry in the middle is flipped', async () => {
      for (let i = 0; i < 4; i++) expect((await post(`more-${Date.now()}-${i}`)).status).toBe(201)
      await written(10)
      const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean)
      const entries = lines
        .map((line, index) => ({ line, index, entry: JSON.parse(line) as { seq: number; kind: string } }))
        .filter(({ entry }) => entry.kind === 'entry')
      const target = entries[Math.floor(entries.length / 2)]
      if (target === undefined) throw new Error('no entry in the log')
      // The byte's offset in the file: every line before it, with its newline, then into the body.
      const offset =
        lines.slice(0, target.index).reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0) +
        Buffer.byteLength(target.line.slice(0, target.line.indexOf('"body":"') + '"body":"'.length + 3))
      const fd = openSync(logFile, 'r+')
      try {
        const was = readFileSync(logFile)
          .subarray(offset, offset + 1)
          .toString()
        writeSync(fd, was === 'A' ? 'B' : 'A', offset)
      } finally {
        closeSync(fd)
      }

      const seq = String(target.entry.seq)
      await page.waitForSelector('#trail-state[data-verify="broken"]', { timeout: 10_000 })
      expect(await page.getAttribute('#trail-state [data-verify-seq]', 'data-verify-seq')).toBe(seq)
      const text = await page.textContent('#trail-state')
      expect(text).toContain(`BROKEN at entry ${seq}`)
      expect(text).toContain(`entry ${seq}: hash does not match its content`)
      const verification = (await (await admin('/v1/audit/verify')).json()) as {
        ok: boolean
        firstBad: { seq: number }
      }
      expect(verification).toMatchObject({ ok: false, firstBad: { seq: target.entry.seq } })
      await page.locator('#trail').screenshot({ path: `${SHOTS}audit-trail-broken.png` })
      await page.screenshot({ path: `${SHOTS}dashboard-audit.png`, fullPage: true })
      expect(consoleErrors).toEqual([])
    })
  })
}
