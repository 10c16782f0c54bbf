// The admin API, on its own port, every call with `Authorization: Bearer <token>`:
//
//   GET    /v1/routes                      each route: mode, match, store, counters; and the breakers
//   PUT    /v1/routes/:route/mode          {"mode": "off" | "observe" | "enforce"}
//   GET    /v1/config                      the configuration in force, secrets redacted
//   POST   /v1/reload                      read the config file again (or take a JSON body)
//   GET    /v1/keys/:route/:key            a key's record   (?principal=…&method=…)
//   DELETE /v1/keys/:route/:key            purge it         (same query)
//   GET    /v1/audit                       the audit log's counters and last sequence number (with `audit`)
//   GET    /v1/audit/entries               the latest entries, decrypted, newest first (?limit=50&route=&type=)
//   GET    /v1/audit/verify                verifyAuditLog over the whole log: ok, counts, the first bad entry
//   GET    /v1/anomalies                   the last anomaly alerts (idem/anomalies), newest first
//   GET    /metrics                        Prometheus metrics (when `metrics: true`)
//   GET    /healthz                        liveness, without a token
//   GET    /dashboard                      the dashboard (page and assets without a token; docs/dashboard.md)

import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readBody } from '../http/node/read-body.js'
import type { GatewayAnomaly } from './anomaly-wiring.js'
import { type AuditReader, auditReaderOf, type EntriesQuery } from './audit-reader.js'
import type { GatewayAuditStatus } from './audit-wiring.js'
import { GatewayConfigError, redactConfig } from './config/load-config.js'
import { MODES, type Mode } from './config/schema.js'
import { serveDashboard } from './dashboard/serve-dashboard.js'
import type { GatewayMetrics } from './gateway-metrics.js'
import type { GatewayOperations } from './operations.js'

const MAX_ADMIN_BODY = 1024 * 1024
/** GET /v1/audit/entries: entries answered by default, and at most. */
const DEFAULT_ENTRIES = 50
const MAX_ENTRIES = 200

class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

/**
 * `metrics`: made with the gateway (createGateway waits for it), so the first scrape counts every
 * request before it. `audit`: the audit log, when the configuration keeps one.
 */
export function createAdminHandler(
  gateway: GatewayOperations,
  metrics: Promise<GatewayMetrics> | undefined,
  audit?: { status(): GatewayAuditStatus },
  anomalies?: { recent(): GatewayAnomaly[] },
): (req: IncomingMessage, res: ServerResponse) => void {
  const token = digest(gateway.config.admin?.token ?? '')
  let reader: AuditReader | undefined
  /** The log's reader, made on first use from the configuration (the audit section cannot be reloaded). */
  const auditReader = (): AuditReader => {
    const config = gateway.config.audit
    if (audit === undefined || config === undefined)
      throw new AdminError(404, 'This gateway keeps no audit log (no audit section in its configuration)')
    reader ??= auditReaderOf(config)
    return reader
  }
  return (req, res) => {
    serve(req, res).catch((error: unknown) => {
      const status =
        error instanceof AdminError
          ? error.status
          : error instanceof GatewayConfigError
            ? 422
            : error instanceof RangeError
              ? 400
              : 500
      const extra =
        error instanceof AdminError ? error.extra : error instanceof GatewayConfigError ? { issues: error.issues } : {}
      json(res, status, { error: (error as Error)?.message ?? String(error), ...extra })
    })
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin')
    const method = req.method ?? 'GET'
    if (url.pathname === '/healthz') return json(res, 200, { status: 'ok' })
    // The dashboard's page and assets hold no secret: served without the token, which the page asks for.
    if (serveDashboard(req, res)) return
    if (!authorized(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer realm="idem-admin"')
      throw new AdminError(401, 'A valid admin token is required: Authorization: Bearer <token>')
    }
    const parts = url.pathname
      .split('/')
      .filter((part) => part !== '')
      .map(decodeURIComponent)

    if (parts[0] === 'metrics' && parts.length === 1 && method === 'GET') {
      if (metrics === undefined) throw new AdminError(404, 'Metrics are off in this configuration (metrics: false)')
      const ready = await metrics
      const text = await ready.scrape()
      res.writeHead(200, { 'content-type': ready.contentType })
      res.end(text)
      return
    }
    if (parts[0] !== 'v1') throw new AdminError(404, `No admin endpoint ${method} ${url.pathname}`)
    const [, resource, name, sub] = parts

    if (resource === 'routes' && name === undefined && method === 'GET') {
      return json(res, 200, { routes: gateway.summary(), breakers: gateway.breakers() })
    }
    if (resource === 'routes' && name !== undefined && sub === 'mode' && method === 'PUT') {
      const body = (await readJson(req)) as { mode?: unknown }
      if (!MODES.includes(body?.mode as Mode)) {
        throw new AdminError(400, `"mode" must be one of ${MODES.join(', ')}`)
      }
      return json(res, 200, gateway.setMode(name, body.mode as Mode))
    }
    if (resource === 'config' && name === undefined && method === 'GET') {
      return json(res, 200, { file: gateway.configFile ?? null, config: redactConfig(gateway.config) })
    }
    if (resource === 'audit' && name === 'entries' && sub === undefined && method === 'GET') {
      return json(res, 200, await auditReader().entries(entriesQuery(url.searchParams)))
    }
    if (resource === 'audit' && name === 'verify' && sub === undefined && method === 'GET') {
      return json(res, 200, await auditReader().verify())
    }
    if (resource === 'anomalies' && name === undefined && method === 'GET') {
      return json(res, 200, anomalies?.recent() ?? [])
    }
    if (resource === 'audit' && name === undefined && method === 'GET') {
      if (audit === undefined)
        throw new AdminError(404, 'This gateway keeps no audit log (no audit section in its configuration)')
      return json(res, 200, audit.status())
    }
    if (resource === 'reload' && name === undefined && method === 'POST') {
      const body = await readJson(req)
      const config = await gateway.reload(body === undefined ? undefined : (body as never))
      return json(res, 200, { reloaded: true, routes: config.routes.map((route) => route.name) })
    }
    if (resource === 'keys' && name !== undefined && sub !== undefined && parts.length === 4) {
      const lookup = {
        route: name,
        key: sub,
        principal: url.searchParams.get('principal') ?? undefined,
        method: url.searchParams.get('method') ?? undefined,
      }
      if (method === 'GET') {
        const found = await gateway.inspect(lookup)
        if (found.record === null) throw new AdminError(404, `No record for key "${sub}" on route "${name}"`, found)
        return json(res, 200, found)
      }
      if (method === 'DELETE') return json(res, 200, await gateway.purge(lookup))
    }
    throw new AdminError(404, `No admin endpoint ${method} ${url.pathname}`)
  }

  function authorized(header: string | undefined): boolean {
    if (header === undefined || !header.startsWith('Bearer ')) return false
    return timingSafeEqual(digest(header.slice('Bearer '.length)), token)
  }
}

function entriesQuery(params: URLSearchParams): EntriesQuery {
  const raw = params.get('limit')
  const limit = raw === null || raw === '' ? DEFAULT_ENTRIES : Number(raw)
  if (!Number.isSafeInteger(limit) || limit < 1) throw new AdminError(400, `"limit" must be a positive integer`)
  const text = (name: string) => {
    const value = params.get(name)
    return value === null || value === '' ? undefined : value
  }
  return { limit: Math.min(limit, MAX_ENTRIES), route: text('route'), type: text('type') }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req, MAX_ADMIN_BODY)
  if (body === undefined || body.byteLength === 0) return undefined
  try {
    return JSON.parse(Buffer.from(body).toString('utf8'))
  } catch (error) {
    throw new AdminError(400, `The request body is not JSON: ${(error as Error).message}`)
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
