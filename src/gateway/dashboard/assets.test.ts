// The dashboard's generated assets match their sources (the file is committed: see
// scripts/build-dashboard.mjs), the browser code type-checks against the DOM, and serveDashboard
// answers its three paths (and only those) without a token. The page itself: dashboard.browser.test.ts.

import { execFileSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets.generated.js'
import { DASHBOARD_CSP, serveDashboard } from './serve-dashboard.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

describe('the dashboard assets', () => {
  it('are what scripts/build-dashboard.mjs makes of src/gateway/dashboard/ui/ today', () => {
    // Throws (exit 1) when the committed file is stale.
    execFileSync(process.execPath, ['scripts/build-dashboard.mjs', '--check'], { cwd: ROOT, stdio: 'pipe' })
    expect(DASHBOARD_JS).toContain('/v1/routes')
    expect(DASHBOARD_CSS).toContain('.uplot')
  })

  it('type-check against the DOM', () => {
    const tsc = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url))
    execFileSync(process.execPath, [tsc, '-p', 'src/gateway/dashboard/ui/tsconfig.json'], { cwd: ROOT, stdio: 'pipe' })
  }, 60_000)
})

describe('serveDashboard', () => {
  let server: Server
  let base: string
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (!serveDashboard(req, res)) res.writeHead(418).end('not the dashboard')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('answers the page, script and stylesheet with their types and a strict CSP', async () => {
    for (const [path, type, body] of [
      ['/dashboard', 'text/html; charset=utf-8', '<script src="/dashboard/app.js" defer></script>'],
      ['/dashboard/?x=1', 'text/html; charset=utf-8', '<label for="token">'],
      ['/dashboard/app.js', 'text/javascript; charset=utf-8', DASHBOARD_JS],
      ['/dashboard/app.css', 'text/css; charset=utf-8', DASHBOARD_CSS],
    ] as const) {
      const response = await fetch(`${base}${path}`)
      expect(response.status, path).toBe(200)
      expect(response.headers.get('content-type')).toBe(type)
      expect(response.headers.get('content-security-policy')).toBe(DASHBOARD_CSP)
      expect(response.headers.get('x-content-type-options')).toBe('nosniff')
      expect(await response.text()).toContain(body)
    }
    const head = await fetch(`${base}/dashboard/app.js`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(DASHBOARD_JS))
  })

  it('leaves everything else to the admin API', async () => {
    for (const [method, path] of [
      ['GET', '/v1/routes'],
      ['GET', '/dashboard/other.js'],
      ['GET', '/dashboardx'],
      ['POST', '/dashboard'],
    ]) {
      expect((await fetch(`${base}${path}`, { method })).status, `${method} ${path}`).toBe(418)
    }
  })

  it('allows no inline script or style and no other origin', () => {
    expect(DASHBOARD_CSP.split('; ')).toEqual(
      expect.arrayContaining([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
      ]),
    )
    expect(DASHBOARD_CSP).not.toMatch(/unsafe|\*|https?:/)
  })
})
