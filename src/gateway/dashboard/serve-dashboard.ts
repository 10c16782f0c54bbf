// The gateway's dashboard, served by the admin port WITHOUT the admin token: the page, its script
// and its stylesheet hold no secret (the page asks for the token, keeps it in the tab's
// sessionStorage and sends it as `Authorization: Bearer` on each admin API call). Every answer
// carries a strict Content-Security-Policy: only this origin's script and styles, no inline script,
// fetches to this origin only, never framed. docs/dashboard.md describes the page.
//
//   GET /dashboard           the page
//   GET /dashboard/app.js    the script (src/gateway/dashboard/ui/ bundled with uPlot)
//   GET /dashboard/app.css   the stylesheet

import type { IncomingMessage, ServerResponse } from 'node:http'
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets.generated.js'

export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Idem gateway dashboard</title>
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
<h1>Idem gateway</h1>
<p id="connection">Not connected</p>
<button type="button" id="sign-out" hidden>Sign out</button>
</header>
<main>
<section id="login" aria-labelledby="login-title">
<h2 id="login-title">Admin token</h2>
<form id="login-form" novalidate>
<label for="token">Admin token</label>
<div class="fields">
<input id="token" name="token" type="password" autocomplete="current-password" aria-describedby="token-hint" required>
<button type="submit">Open the dashboard</button>
</div>
<p id="login-error" role="alert"></p>
<p id="token-hint" class="hint">The token of the gateway's <code>admin</code> section. It stays in this tab's session storage, is sent only to this gateway's admin API, and is forgotten when the tab closes, on Sign out, or when the gateway refuses it.</p>
</form>
</section>
<div id="app" hidden>
<nav aria-label="Dashboard sections">
<ul>
<li><a href="#traffic">Live traffic</a></li>
<li><a href="#routes">Routes and modes</a></li>
<li><a href="#breakers">Breakers</a></li>
<li><a href="#keys">Key inspector</a></li>
<li><a href="#audit">Audit log</a></li>
<li><a href="#trail">Audit trail</a></li>
<li><a href="#anomalies">Anomalies</a></li>
</ul>
</nav>
<section id="traffic" aria-labelledby="traffic-title">
<h2 id="traffic-title">Live traffic</h2>
<p class="hint">Per route, from <code>GET /v1/routes</code> every second: the totals since the gateway started, and per second the requests, duplicates absorbed (answered from the store), rejections and in-progress conflicts (IN_PROGRESS rejections).</p>
<p id="traffic-empty" hidden>This gateway has no routes.</p>
<div id="charts" class="charts"></div>
</section>
<section id="routes" aria-labelledby="routes-title">
<h2 id="routes-title">Routes and modes</h2>
<p class="hint">A route in <strong>observe</strong> forwards every request and counts what it would have done; in <strong>enforce</strong> a duplicate gets the stored response. The switch asks before it changes anything.</p>
<div class="table-scroll">
<table>
<caption class="muted">Totals since the gateway started</caption>
<thead><tr><th scope="col">Route</th><th scope="col">Mode</th><th scope="col">Methods</th><th scope="col">Path</th><th scope="col">Store</th><th scope="col">Executed</th><th scope="col">Replayed</th><th scope="col">Would replay (observe)</th><th scope="col">Rejected</th><th scope="col">Change mode</th></tr></thead>
<tbody id="routes-body"></tbody>
</table>
</div>
</section>
<section id="breakers" aria-labelledby="breakers-title">
<h2 id="breakers-title">Breakers</h2>
<p class="hint">Each store's circuit breaker: closed (the store answers), open (calls fail fast), half-open (a trial call), and how often it opened.</p>
<table>
<thead><tr><th scope="col">Store</th><th scope="col">State</th><th scope="col">Times opened</th></tr></thead>
<tbody id="breakers-body"></tbody>
</table>
<p id="breakers-empty" hidden>No stores.</p>
</section>
<section id="keys" aria-labelledby="keys-title">
<h2 id="keys-title">Key inspector</h2>
<form id="key-form">
<div class="fields">
<div><label for="key-route">Route</label><select id="key-route" name="route" required></select></div>
<div><label for="key-key">Idempotency key</label><input id="key-key" name="key" type="text" autocomplete="off" required></div>
<div><label for="key-principal">Principal (optional)</label><input id="key-principal" name="principal" type="text" autocomplete="off"></div>
<div><label for="key-method">Method (optional)</label><input id="key-method" name="method" type="text" autocomplete="off" placeholder="POST"></div>
<button type="submit">Inspect</button>
</div>
</form>
<div id="key-result" aria-live="polite"></div>
</section>
<section id="audit" aria-labelledby="audit-title">
<h2 id="audit-title">Audit log</h2>
<p class="hint">From <code>GET /v1/audit</code>, every 5 seconds.</p>
<div id="audit-body" aria-live="polite"><p>Loading…</p></div>
</section>
<section id="trail" aria-labelledby="trail-title">
<h2 id="trail-title">Audit trail</h2>
<p class="hint">Every 3 seconds: the whole log verified by <code>GET /v1/audit/verify</code> (hash chain, each entry's tag, the checkpoints' signatures) and the latest entries, decrypted by the gateway, from <code>GET /v1/audit/entries</code>.</p>
<div id="trail-state" role="status" aria-live="polite" data-verify="loading"><p>Loading…</p></div>
<dl id="trail-counts" class="record" hidden></dl>
<div class="table-scroll" id="trail-table" hidden>
<table>
<caption class="muted">Latest entries, newest first</caption>
<thead><tr><th scope="col">Seq</th><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Route</th><th scope="col">Key</th><th scope="col">Code</th><th scope="col">Status</th></tr></thead>
<tbody id="trail-body"></tbody>
</table>
</div>
</section>
<section id="anomalies" aria-labelledby="anomalies-title">
<h2 id="anomalies-title">Anomalies</h2>
<p class="hint">Alerts of the gateway's anomaly detector (<code>GET /v1/anomalies</code>, every 3 seconds): a route's or a caller's replays or mismatches far above their learned baseline.</p>
<p id="anomalies-empty">No anomaly so far.</p>
<div class="table-scroll" id="anomalies-table" hidden>
<table>
<caption class="muted">Latest alerts, newest first</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Scope</th><th scope="col">When</th><th scope="col">Detail</th></tr></thead>
<tbody id="anomalies-body"></tbody>
</table>
</div>
</section>
</div>
<dialog id="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-text">
<h2 id="confirm-title"></h2>
<p id="confirm-text"></p>
<div class="actions">
<button type="button" id="confirm-cancel" class="switch">Cancel</button>
<button type="button" id="confirm-ok"></button>
</div>
</dialog>
</main>
<p id="announcer" class="status" role="status" aria-live="polite"></p>
</body>
</html>
`

const ASSETS: Readonly<Record<string, { type: string; body: string }>> = {
  '/dashboard': { type: 'text/html; charset=utf-8', body: PAGE },
  '/dashboard/': { type: 'text/html; charset=utf-8', body: PAGE },
  '/dashboard/app.js': { type: 'text/javascript; charset=utf-8', body: DASHBOARD_JS },
  '/dashboard/app.css': { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS },
}

/**
 * Answer a request for the dashboard: true when it did (GET or HEAD of its three paths), false
 * for anything else, which the admin API then handles (token check first).
 */
export function serveDashboard(req: IncomingMessage, res: ServerResponse): boolean {
  const method = req.method ?? 'GET'
  if (method !== 'GET' && method !== 'HEAD') return false
  const path = (req.url ?? '/').split('?', 1)[0] as string
  const asset = ASSETS[path]
  if (asset === undefined) return false
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': Buffer.byteLength(asset.body),
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  })
  res.end(method === 'HEAD' ? undefined : asset.body)
  return true
}
