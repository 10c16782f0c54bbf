// The gateway's dashboard: the token form, then live charts per route, the routes and their modes
// (with a guarded observe ↔ enforce switch), the breakers, a key inspector, the audit log's
// counters, the audit trail (the log's verification and its latest entries) and the anomaly
// alerts, all from the admin API (GET /v1/routes every second). Text from the gateway is only
// ever set as textContent, never parsed as HTML.

import { api, errorOf, forgetToken, storedToken, storeToken, Unauthorized } from './api.js'
import { countersOf, RouteChart } from './charts.js'
import { previewResult } from './preview.js'

const POLL_MS = 1000
const AUDIT_EVERY = 5
/** The audit trail (a verification of the whole log) and the anomalies: every 3 polls. */
const TRAIL_EVERY = 3

/** @template {HTMLElement} T @param {string} id @returns {T} */
function byId(id) {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`#${id} is missing from the page`)
  return /** @type {T} */ (found)
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {...(Node | string)} children
 */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

/** @param {number | null | undefined} ms */
function time(ms) {
  if (ms === null || ms === undefined) return '–'
  const date = new Date(ms)
  return `${date.toLocaleString()} (${date.toISOString()})`
}

const login = byId('login')
const loginForm = /** @type {HTMLFormElement} */ (byId('login-form'))
const tokenInput = /** @type {HTMLInputElement} */ (byId('token'))
const loginError = byId('login-error')
const app = byId('app')
const signOut = /** @type {HTMLButtonElement} */ (byId('sign-out'))
const connection = byId('connection')
const announcer = byId('announcer')

/** @param {string} message */
function announce(message) {
  announcer.textContent = message
}

// --- session ---------------------------------------------------------------------------------

let polling = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
let polls = 0

/** @param {string} [message] */
function showLogin(message) {
  if (polling !== undefined) clearTimeout(polling)
  polling = undefined
  app.hidden = true
  signOut.hidden = true
  login.hidden = false
  connection.textContent = 'Not connected'
  loginError.textContent = message ?? ''
  tokenInput.value = ''
  tokenInput.focus()
}

async function start() {
  try {
    await refresh()
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin('The gateway refused this token. Enter the admin token again.')
    loginError.textContent = `The gateway did not answer: ${/** @type {Error} */ (error).message}`
    return
  }
  login.hidden = true
  app.hidden = false
  signOut.hidden = false
  loginError.textContent = ''
  announce('Connected to the gateway')
  for (const chart of charts.values()) chart.resize()
  schedule()
}

function schedule() {
  polling = setTimeout(async () => {
    try {
      await refresh()
      schedule()
    } catch (error) {
      if (error instanceof Unauthorized) return showLogin('The gateway refused the token (401). Enter it again.')
      connection.textContent = `Connection lost (${/** @type {Error} */ (error).message}), retrying…`
      connection.dataset.state = 'lost'
      schedule()
    }
  }, POLL_MS)
}

loginForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const token = tokenInput.value.trim()
  if (token === '') {
    loginError.textContent = 'Enter the admin token.'
    return
  }
  storeToken(token)
  tokenInput.value = ''
  void start()
})

signOut.addEventListener('click', () => {
  forgetToken()
  showLogin('Signed out: the token was removed from this tab.')
})

// --- polling ---------------------------------------------------------------------------------

/** @type {any[]} */
let routes = []

async function refresh() {
  const answer = await api('GET', '/v1/routes')
  if (answer.status !== 200) throw new Error(errorOf(answer))
  routes = Array.isArray(answer.data.routes) ? answer.data.routes : []
  const at = Date.now() / 1000
  renderTraffic(at)
  renderRoutes()
  renderBreakers(Array.isArray(answer.data.breakers) ? answer.data.breakers : [])
  renderRouteChoices()
  const poll = polls++
  if (poll % AUDIT_EVERY === 0) await refreshAudit()
  if (poll % TRAIL_EVERY === 0) await Promise.all([refreshTrail(), refreshAnomalies()])
  connection.textContent = `Live: updated ${new Date().toLocaleTimeString()}`
  connection.dataset.state = 'live'
}

// --- live traffic ----------------------------------------------------------------------------

const chartsBox = byId('charts')
/** @type {Map<string, RouteChart>} */
const charts = new Map()
/** @type {Map<string, Record<string, HTMLElement>>} */
const counterCells = new Map()

const COUNTERS = /** @type {const} */ ([
  ['requests', 'Requests'],
  ['replayed', 'Duplicates absorbed'],
  ['rejected', 'Rejections'],
  ['inProgress', 'In-progress conflicts'],
])

/** @param {number} at */
function renderTraffic(at) {
  const names = new Set(routes.map((route) => String(route.name)))
  for (const [name, chart] of charts) {
    if (names.has(name)) continue
    chart.destroy()
    charts.delete(name)
    counterCells.delete(name)
    chartsBox.querySelector(`[data-route-card="${CSS.escape(name)}"]`)?.remove()
  }
  for (const route of routes) {
    const name = String(route.name)
    let chart = charts.get(name)
    let cells = counterCells.get(name)
    if (chart === undefined || cells === undefined) {
      const headingId = `traffic-${name}`
      const list = el('dl', { class: 'counters' })
      cells = {}
      for (const [key, label] of COUNTERS) {
        const value = el('dd', { 'data-route': name, 'data-counter': key }, '0')
        cells[key] = value
        list.append(el('div', {}, el('dt', {}, label), value))
      }
      const plot = el('div', {
        class: 'plot',
        'data-chart': name,
        role: 'img',
        'aria-label': `Chart of ${name} per second`,
      })
      const card = el(
        'article',
        { class: 'card', 'data-route-card': name, 'aria-labelledby': headingId },
        el('h3', { id: headingId }, name, ' ', el('span', { class: 'mode', 'data-mode-of': name }, '')),
        list,
        plot,
      )
      chartsBox.append(card)
      chart = new RouteChart(plot, name)
      charts.set(name, chart)
      counterCells.set(name, cells)
    }
    const counters = countersOf(route.stats)
    for (const [key] of COUNTERS) {
      const cell = cells[key]
      if (cell !== undefined && cell.textContent !== String(counters[key])) cell.textContent = String(counters[key])
    }
    const mode = chartsBox.querySelector(`[data-mode-of="${CSS.escape(name)}"]`)
    if (mode !== null) mode.textContent = `(${route.mode})`
    chart.push(at, counters)
  }
  byId('traffic-empty').hidden = routes.length > 0
}

let resizeTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer)
  resizeTimer = setTimeout(() => {
    for (const chart of charts.values()) chart.resize()
  }, 150)
})

// --- routes and their modes ------------------------------------------------------------------

const routesBody = byId('routes-body')
/** @type {Map<string, { row: HTMLTableRowElement, cells: HTMLElement[], action: HTMLElement }>} */
const rows = new Map()

function renderRoutes() {
  const names = new Set(routes.map((route) => String(route.name)))
  for (const [name, row] of rows) {
    if (names.has(name)) continue
    row.row.remove()
    rows.delete(name)
  }
  for (const route of routes) {
    const name = String(route.name)
    let row = rows.get(name)
    if (row === undefined) {
      const cells = Array.from({ length: 8 }, () => el('td'))
      const action = el('td')
      const tr = /** @type {HTMLTableRowElement} */ (
        el('tr', { 'data-route-row': name }, el('th', { scope: 'row' }, name), ...cells, action)
      )
      routesBody.append(tr)
      row = { row: tr, cells, action }
      rows.set(name, row)
    }
    const stats = route.stats ?? {}
    const values = [
      String(route.mode),
      (route.methods ?? []).join(', '),
      String(route.path ?? ''),
      String(route.store ?? '–'),
      String(stats.outcomes?.executed ?? 0),
      String(stats.outcomes?.replayed ?? 0),
      String(stats.observed?.replayed ?? 0),
      String(stats.outcomes?.rejected ?? 0),
    ]
    values.forEach((value, i) => {
      const cell = row.cells[i]
      if (cell !== undefined && cell.textContent !== value) cell.textContent = value
    })
    row.cells[0]?.setAttribute('data-mode', String(route.mode))
    renderSwitch(row.action, name, String(route.mode))
  }
}

/** @param {HTMLElement} cell @param {string} route @param {string} mode */
function renderSwitch(cell, route, mode) {
  const target = mode === 'observe' ? 'enforce' : mode === 'enforce' ? 'observe' : undefined
  if (cell.dataset.for === `${mode}`) return
  cell.dataset.for = mode
  const focused = cell.contains(document.activeElement)
  cell.replaceChildren()
  if (target === undefined) {
    cell.append(el('span', { class: 'muted' }, 'off: change it in the configuration'))
    return
  }
  const button = el('button', { type: 'button', class: 'switch', 'data-switch': route }, `Switch to ${target}`)
  button.setAttribute('aria-label', `Switch route ${route} from ${mode} to ${target}`)
  button.addEventListener('click', () => confirmSwitch(route, mode, target, button))
  cell.append(button)
  if (focused) button.focus()
}

/** @param {string} route @param {string} from @param {string} to @param {HTMLElement} opener */
async function confirmSwitch(route, from, to, opener) {
  const consequence =
    to === 'enforce'
      ? 'Duplicates will be answered with the stored response (or rejected while the first is in progress) instead of reaching the upstream.'
      : 'Every request will reach the upstream again; duplicates are only counted, never answered from the store.'
  const ok = await confirmDialog(
    `Switch route “${route}” from ${from} to ${to}?`,
    `${consequence} The change lasts until the next reload or restart of the gateway.`,
    `Switch ${route} to ${to}`,
    opener,
  )
  if (!ok) {
    announce(`Route ${route} left in ${from} mode`)
    return
  }
  try {
    const answer = await api('PUT', `/v1/routes/${encodeURIComponent(route)}/mode`, { mode: to })
    if (answer.status !== 200) {
      announce(`Switching ${route} failed: ${errorOf(answer)}`)
      return
    }
    announce(`Route ${route} is now in ${answer.data.to} mode (was ${answer.data.from})`)
    await refresh()
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin('The gateway refused the token (401). Enter it again.')
    announce(`Switching ${route} failed: ${/** @type {Error} */ (error).message}`)
  }
}

// --- the confirm step ------------------------------------------------------------------------

const dialog = /** @type {HTMLDialogElement} */ (byId('confirm'))
const dialogTitle = byId('confirm-title')
const dialogText = byId('confirm-text')
const dialogOk = /** @type {HTMLButtonElement} */ (byId('confirm-ok'))
const dialogCancel = /** @type {HTMLButtonElement} */ (byId('confirm-cancel'))

/**
 * A modal question; resolves true on the confirm button, false on Cancel or Escape. Focus starts
 * on Cancel (the safe choice) and returns to `opener`.
 * @param {string} title @param {string} text @param {string} confirmLabel @param {HTMLElement} opener
 * @returns {Promise<boolean>}
 */
function confirmDialog(title, text, confirmLabel, opener) {
  dialogTitle.textContent = title
  dialogText.textContent = text
  dialogOk.textContent = confirmLabel
  return new Promise((resolve) => {
    /** @param {boolean} answer */
    const done = (answer) => {
      dialogOk.removeEventListener('click', yes)
      dialogCancel.removeEventListener('click', no)
      dialog.removeEventListener('cancel', no)
      if (dialog.open) dialog.close()
      const target = opener.isConnected
        ? opener
        : document.querySelector(`[data-switch="${CSS.escape(opener.dataset.switch ?? '')}"]`)
      if (target instanceof HTMLElement) target.focus()
      resolve(answer)
    }
    const yes = () => done(true)
    /** @param {Event} [event] */
    const no = (event) => {
      event?.preventDefault()
      done(false)
    }
    dialogOk.addEventListener('click', yes)
    dialogCancel.addEventListener('click', no)
    dialog.addEventListener('cancel', no)
    dialog.showModal()
    dialogCancel.focus()
  })
}

// --- breakers --------------------------------------------------------------------------------

const breakersBody = byId('breakers-body')

/** @param {any[]} breakers */
function renderBreakers(breakers) {
  const key = JSON.stringify(breakers)
  if (breakersBody.dataset.last === key) return
  breakersBody.dataset.last = key
  breakersBody.replaceChildren(
    ...breakers.map((breaker) =>
      el(
        'tr',
        { 'data-breaker': String(breaker.store) },
        el('th', { scope: 'row' }, String(breaker.store)),
        el('td', { 'data-state': String(breaker.state) }, String(breaker.state).replace('_', '-')),
        el('td', {}, String(breaker.opened ?? 0)),
      ),
    ),
  )
  byId('breakers-empty').hidden = breakers.length > 0
}

// --- key inspector ---------------------------------------------------------------------------

const keyForm = /** @type {HTMLFormElement} */ (byId('key-form'))
const keyRoute = /** @type {HTMLSelectElement} */ (byId('key-route'))
const keyResult = byId('key-result')

function renderRouteChoices() {
  const names = routes.map((route) => String(route.name))
  const current = Array.from(keyRoute.options, (option) => option.value)
  if (JSON.stringify(names) === JSON.stringify(current)) return
  const selected = keyRoute.value
  keyRoute.replaceChildren(...names.map((name) => el('option', { value: name }, name)))
  if (names.includes(selected)) keyRoute.value = selected
}

/** @returns {{ route: string, key: string, query: string, label: string }} */
function lookup() {
  const data = new FormData(keyForm)
  const route = String(data.get('route') ?? '')
  const key = String(data.get('key') ?? '').trim()
  const params = new URLSearchParams()
  const principal = String(data.get('principal') ?? '').trim()
  const method = String(data.get('method') ?? '')
    .trim()
    .toUpperCase()
  if (principal !== '') params.set('principal', principal)
  if (method !== '') params.set('method', method)
  const query = params.size > 0 ? `?${params}` : ''
  return { route, key, query, label: `key “${key}” on route “${route}”` }
}

keyForm.addEventListener('submit', (event) => {
  event.preventDefault()
  void inspect()
})

async function inspect() {
  const { route, key, query, label } = lookup()
  if (route === '' || key === '') {
    keyResult.replaceChildren(el('p', { role: 'alert' }, 'Choose a route and enter a key.'))
    return
  }
  keyResult.replaceChildren(el('p', {}, `Looking up ${label}…`))
  try {
    const answer = await api('GET', `/v1/keys/${encodeURIComponent(route)}/${encodeURIComponent(key)}${query}`)
    if (answer.status === 404 && answer.data?.record === null) {
      keyResult.replaceChildren(el('p', { 'data-key-state': 'absent' }, `No record for ${label}.`), idLine(answer.data))
      return
    }
    if (answer.status !== 200) {
      keyResult.replaceChildren(el('p', { role: 'alert' }, `Lookup failed: ${errorOf(answer)}`))
      return
    }
    showRecord(answer.data, route, key, query, label)
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin('The gateway refused the token (401). Enter it again.')
    keyResult.replaceChildren(el('p', { role: 'alert' }, `Lookup failed: ${/** @type {Error} */ (error).message}`))
  }
}

/** @param {any} data */
function idLine(data) {
  return el('p', { class: 'muted' }, `Scope ${String(data?.scope ?? '?')}, record id ${String(data?.id ?? '?')}`)
}

/**
 * @param {any} data @param {string} route @param {string} key @param {string} query @param {string} label
 */
function showRecord(data, route, key, query, label) {
  const record = data.record
  /** @type {Array<[string, string | Node]>} */
  const fields = [
    ['State', String(record.state)],
    ['Attempt', String(record.attempt)],
    ['Lease until', time(record.leaseUntil)],
    ['Expires', time(record.expiresAt)],
    ['Created', time(record.createdAt)],
    ['Updated', time(record.updatedAt)],
    ['Stored response', previewNode(record.result)],
  ]
  const list = el('dl', { class: 'record' })
  for (const [name, value] of fields) {
    list.append(
      el('div', {}, el('dt', {}, name), el('dd', { 'data-field': name.toLowerCase().replace(/ /g, '-') }, value)),
    )
  }
  const purge = el('button', { type: 'button', class: 'danger', id: 'purge' }, 'Purge this key')
  purge.addEventListener('click', async () => {
    const ok = await confirmDialog(
      `Purge ${label}?`,
      'The record is deleted: the next request with this key executes again on the upstream.',
      `Purge ${key}`,
      purge,
    )
    if (!ok) return
    try {
      const answer = await api('DELETE', `/v1/keys/${encodeURIComponent(route)}/${encodeURIComponent(key)}${query}`)
      const text =
        answer.status === 200
          ? `Purged ${label}${answer.data.existed ? '' : ' (it had no record)'}.`
          : `Purge failed: ${errorOf(answer)}`
      keyResult.replaceChildren(el('p', { 'data-key-state': answer.status === 200 ? 'purged' : 'error' }, text))
      announce(text)
    } catch (error) {
      if (error instanceof Unauthorized) return showLogin('The gateway refused the token (401). Enter it again.')
      announce(`Purge failed: ${/** @type {Error} */ (error).message}`)
    }
  })
  keyResult.replaceChildren(el('h3', {}, `Record of ${label}`), idLine(data), list, purge)
}

/** @param {string | null} result */
function previewNode(result) {
  const preview = previewResult(result)
  switch (preview.kind) {
    case 'none':
      return el('span', { class: 'muted' }, 'none (not completed)')
    case 'too-large':
      return el('span', {}, `executed, but the response (${preview.bytes} bytes) was over the size limit: not stored`)
    case 'error':
      return el('span', {}, `a stored error: ${preview.name}: ${preview.message}`)
    case 'raw':
      return el('pre', { class: 'body' }, preview.text + (preview.truncated ? '…' : ''))
    case 'response':
      return el(
        'div',
        {},
        el(
          'p',
          { 'data-field': 'status' },
          `Status ${preview.status}${preview.contentType ? `, ${preview.contentType}` : ''}, ${preview.bytes} bytes${preview.encoding === 'binary' ? ' (binary, shown in hex)' : ''}`,
        ),
        el('pre', { class: 'body', 'data-field': 'body' }, preview.body + (preview.truncated ? '…' : '')),
      )
  }
}

// --- audit log -------------------------------------------------------------------------------

const auditBody = byId('audit-body')

async function refreshAudit() {
  const answer = await api('GET', '/v1/audit')
  if (answer.status === 404) {
    if (auditBody.dataset.state !== 'absent') {
      auditBody.dataset.state = 'absent'
      auditBody.replaceChildren(
        el('p', {}, 'No audit log configured on this gateway (no audit section in its configuration).'),
      )
    }
    return
  }
  if (answer.status !== 200) {
    auditBody.dataset.state = 'error'
    auditBody.replaceChildren(el('p', { role: 'alert' }, `The audit log's status is unavailable: ${errorOf(answer)}`))
    return
  }
  const stats = answer.data?.stats ?? {}
  /** @type {Array<[string, unknown, string]>} */
  const fields = [
    ['lastSeq', answer.data?.lastSeq, 'Last sequence number'],
    ['written', stats.written, 'Events written'],
    ['queued', stats.queued, 'Queued, not yet written'],
    ['blocked', stats.blocked, 'Waiting for room in the queue'],
    ['dropped', stats.dropped, 'Dropped (queue full)'],
    ['checkpoints', stats.checkpoints, 'Checkpoints signed'],
    ['errors', stats.errors, 'Write errors'],
  ]
  const list = el('dl', { class: 'record' })
  for (const [key, value, label] of fields) {
    if (value === undefined) continue
    list.append(el('div', {}, el('dt', {}, label), el('dd', { 'data-audit': key }, String(value))))
  }
  auditBody.dataset.state = 'present'
  auditBody.replaceChildren(list)
}

// --- audit trail -----------------------------------------------------------------------------

const trailState = byId('trail-state')
const trailCounts = byId('trail-counts')
const trailTable = byId('trail-table')
const trailBody = byId('trail-body')

/**
 * The verification state, replaced only when it changes (the region is live: an unchanged state
 * is not announced again every few seconds).
 * @param {'ok' | 'broken' | 'absent' | 'error'} state
 * @param {string} headline
 * @param {string} [reason]
 * @param {string} [seq]
 */
function showTrailState(state, headline, reason, seq) {
  const signature = `${state}\n${headline}\n${reason ?? ''}`
  if (trailState.dataset.signature === signature) return
  trailState.dataset.signature = signature
  trailState.dataset.verify = state
  const box = el('p', { class: 'verify', 'data-verify': state }, headline)
  if (reason !== undefined) box.append(el('span', { class: 'reason', 'data-verify-reason': '' }, reason))
  if (seq !== undefined) box.dataset.verifySeq = seq
  trailState.replaceChildren(box)
}

async function refreshTrail() {
  const verify = await api('GET', '/v1/audit/verify')
  if (verify.status === 404) {
    showTrailState('absent', 'Not configured: this gateway keeps no audit log (no audit section in its configuration).')
    trailCounts.hidden = true
    trailTable.hidden = true
    return
  }
  if (verify.status !== 200) {
    showTrailState('error', `The verification is unavailable: ${errorOf(verify)}`)
    return
  }
  const result = verify.data ?? {}
  if (result.ok === true) {
    const writing = result.beingWritten === true ? ' (its last line is being written and was not counted)' : ''
    showTrailState('ok', `OK: the whole log verifies${writing}.`)
  } else {
    const bad = result.firstBad ?? {}
    const where = typeof bad.seq === 'number' ? `entry ${bad.seq}` : `line ${bad.position}`
    showTrailState(
      'broken',
      `BROKEN at ${where}: the log does not verify from there on.`,
      String(bad.reason ?? 'no reason given'),
      typeof bad.seq === 'number' ? String(bad.seq) : '',
    )
  }
  /** @type {Array<[string, unknown, string]>} */
  const counts = [
    ['entries', result.entries, 'Entries verified'],
    ['checkpoints', result.checkpoints, 'Checkpoints'],
    ['signedUpTo', result.signedUpTo, 'Signed up to entry'],
    ['unsigned', result.unsigned, 'Unsigned (after the last checkpoint)'],
  ]
  trailCounts.replaceChildren(
    ...counts.map(([key, value, label]) =>
      el('div', {}, el('dt', {}, label), el('dd', { 'data-trail': key }, String(value ?? '–'))),
    ),
  )
  trailCounts.hidden = false

  const answer = await api('GET', '/v1/audit/entries?limit=50')
  if (answer.status !== 200 || !Array.isArray(answer.data)) {
    trailTable.hidden = true
    return
  }
  /** @type {any[]} */
  const entries = answer.data
  trailBody.replaceChildren(
    ...entries.map((entry) => {
      const row = el('tr', { 'data-seq': String(entry.seq) })
      /** @type {Array<[string, unknown]>} */
      const cells = [
        ['seq', entry.seq],
        ['time', entry.time],
        ['type', entry.error === undefined ? entry.type : `cannot open: ${entry.error}`],
        ['route', entry.route],
        ['key', entry.key],
        ['code', entry.code],
        ['status', entry.status],
      ]
      for (const [name, value] of cells) {
        const cell = el('td', { 'data-col': name }, value === undefined || value === null ? '–' : String(value))
        if (name === 'key') cell.className = 'key'
        row.append(cell)
      }
      return row
    }),
  )
  if (entries.length === 0) {
    trailBody.replaceChildren(el('tr', {}, el('td', { colspan: '7' }, 'No entries yet.')))
  }
  trailTable.hidden = false
}

// --- anomalies -------------------------------------------------------------------------------

const anomaliesEmpty = byId('anomalies-empty')
const anomaliesTable = byId('anomalies-table')
const anomaliesBody = byId('anomalies-body')
/** The newest alert already shown (its `at`): a newer one is announced. */
let newestAnomaly = 0

/** @param {number} value */
function perSecond(value) {
  return typeof value === 'number' ? `${Number(value.toFixed(2))}/s` : '–'
}

async function refreshAnomalies() {
  const answer = await api('GET', '/v1/anomalies')
  if (answer.status !== 200 || !Array.isArray(answer.data)) return
  /** @type {any[]} */
  const anomalies = answer.data
  anomaliesEmpty.hidden = anomalies.length > 0
  anomaliesTable.hidden = anomalies.length === 0
  anomaliesBody.replaceChildren(
    ...anomalies.map((anomaly, index) => {
      const open = anomaly.resolvedAt === undefined
      const who =
        anomaly.subject === 'principal'
          ? `caller ${anomaly.principal ?? '?'} on ${anomaly.scope}`
          : String(anomaly.scope)
      const ended = open
        ? 'ongoing'
        : `ended ${new Date(anomaly.resolvedAt).toLocaleTimeString()} (${anomaly.resolvedBy ?? 'calm'})`
      const detail = `${perSecond(anomaly.rate)} ${anomaly.kind}, normally ${perSecond(anomaly.baseline)}; ${ended}`
      return el(
        'tr',
        { 'data-anomaly': String(index), 'data-anomaly-open': String(open) },
        el('td', { 'data-col': 'kind' }, String(anomaly.kind)),
        el('td', { 'data-col': 'scope', class: 'scope' }, who),
        el('td', { 'data-col': 'when' }, time(anomaly.at)),
        el('td', { 'data-col': 'detail' }, detail),
      )
    }),
  )
  const newest = anomalies[0]
  if (newest !== undefined && typeof newest.at === 'number' && newest.at > newestAnomaly) {
    announce(`Anomaly: ${newest.kind} on ${newest.scope}`)
    newestAnomaly = newest.at
  }
}

// --- start -----------------------------------------------------------------------------------

if (storedToken() === null) showLogin()
else void start()
