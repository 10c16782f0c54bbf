// `idem`: run the gateway, operate running gateways through their admin API, and check and read
// audit logs (audit-command.ts).

import { parseArgs } from 'node:util'
import { type AdminTarget, callAdmin } from './admin-client.js'
import { AUDIT_USAGE, AuditUsageError, auditCommand } from './audit-command.js'

export const USAGE = `Usage:
  idem gateway --config idem.yaml        run the gateway (SIGHUP reloads the file, SIGTERM stops)
  idem stats [ROUTE]                     counters per route, and the store breakers
  idem mode ROUTE off|observe|enforce    switch a route's mode (until the next reload or restart)
  idem inspect ROUTE KEY [--principal P] [--method M]   a key's record
  idem purge ROUTE KEY [--principal P] [--method M]     remove a key's record
  idem reload                            make the gateways read their config file again
  idem config                            the configuration in force (secrets redacted)
${AUDIT_USAGE}

Admin commands talk to --admin URL (repeat it for every replica; or IDEM_ADMIN_URL, comma-separated)
with the token in --token or IDEM_ADMIN_TOKEN. --json prints the raw answers. Audit commands read the
log itself (--file or --postgres) with the keys in --keys or IDEM_AUDIT_KEYS ("k1:<base64>,k2:<base64>").`

export async function main(argv: readonly string[], env = process.env): Promise<number> {
  // Audit commands read a log, not an admin API: their own options (docs/audit.md).
  if (argv[0] === 'audit') {
    try {
      return await auditCommand(argv.slice(1), env)
    } catch (error) {
      throw error instanceof AuditUsageError ? new UsageError(error.message) : error
    }
  }
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      admin: { type: 'string', multiple: true },
      token: { type: 'string' },
      principal: { type: 'string' },
      method: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [command, ...args] = positionals
  if (values.help === true || command === undefined || command === 'help') {
    console.log(USAGE)
    return command === undefined && values.help !== true ? 2 : 0
  }
  if (command === 'gateway') return runGateway(values.config)

  const targets = adminTargets(values.admin, values.token, env)
  const keyPath = (route: string | undefined, key: string | undefined): string => {
    if (route === undefined || key === undefined) throw new UsageError(`idem ${command} needs ROUTE and KEY`)
    const query = new URLSearchParams()
    if (values.principal !== undefined) query.set('principal', values.principal)
    if (values.method !== undefined) query.set('method', values.method)
    const suffix = query.size === 0 ? '' : `?${query}`
    return `v1/keys/${encodeURIComponent(route)}/${encodeURIComponent(key)}${suffix}`
  }
  let call: (target: AdminTarget) => ReturnType<typeof callAdmin>
  switch (command) {
    case 'stats':
      call = (t) => callAdmin(t, 'GET', 'v1/routes')
      break
    case 'mode': {
      const [route, mode] = args
      if (route === undefined || mode === undefined)
        throw new UsageError('idem mode needs ROUTE and off|observe|enforce')
      call = (t) => callAdmin(t, 'PUT', `v1/routes/${encodeURIComponent(route)}/mode`, { mode })
      break
    }
    case 'inspect': {
      const path = keyPath(args[0], args[1])
      call = (t) => callAdmin(t, 'GET', path)
      break
    }
    case 'purge': {
      const path = keyPath(args[0], args[1])
      call = (t) => callAdmin(t, 'DELETE', path)
      break
    }
    case 'reload':
      call = (t) => callAdmin(t, 'POST', 'v1/reload')
      break
    case 'config':
      call = (t) => callAdmin(t, 'GET', 'v1/config')
      break
    default:
      throw new UsageError(`Unknown command "${command}"`)
  }

  let failed = false
  for (const target of targets) {
    try {
      const answer = await call(target)
      if (answer.status >= 400) failed = true
      if (values.json === true) console.log(JSON.stringify(answer))
      else console.log(present(command, args[0], answer.url, answer.status, answer.body, targets.length > 1))
    } catch (error) {
      failed = true
      console.error((error as Error).message)
    }
  }
  return failed ? 1 : 0
}

/** Bad arguments: the bin prints the message and the usage, and exits 2. */
export class UsageError extends Error {}

function adminTargets(flags: string[] | undefined, token: string | undefined, env: NodeJS.ProcessEnv): AdminTarget[] {
  const urls = flags ?? (env.IDEM_ADMIN_URL ?? '').split(',').filter((url) => url.trim() !== '')
  if (urls.length === 0) throw new UsageError('Give the admin API: --admin http://127.0.0.1:9090 (or IDEM_ADMIN_URL)')
  const secret = token ?? env.IDEM_ADMIN_TOKEN
  if (secret === undefined || secret === '') throw new UsageError('Give the admin token: --token or IDEM_ADMIN_TOKEN')
  return urls.map((url) => ({ url: url.trim(), token: secret }))
}

/** A human reading of an answer; --json gives the raw one. */
function present(
  command: string,
  route: string | undefined,
  url: string,
  status: number,
  body: unknown,
  many: boolean,
): string {
  const head = many ? `${url}\n` : ''
  if (status >= 400) return `${head}error ${status}: ${(body as { error?: string })?.error ?? JSON.stringify(body)}`
  if (command === 'stats') {
    const { routes, breakers } = body as {
      routes: Array<{
        name: string
        mode: string
        path: string
        stats: {
          requests: number
          outcomes: Record<string, number>
          observed: { replayed: number; rejected: number }
          failedOpen: number
        }
      }>
      breakers: Array<{ store: string; state: string; opened: number }>
    }
    const lines = routes
      .filter((r) => route === undefined || r.name === route)
      .map((r) => {
        const o = r.stats.outcomes
        const observed =
          r.mode === 'observe' || r.stats.observed.replayed + r.stats.observed.rejected > 0
            ? `  would have: replayed ${r.stats.observed.replayed}, rejected ${r.stats.observed.rejected}`
            : ''
        return `${r.name.padEnd(16)} ${r.mode.padEnd(8)} ${String(r.stats.requests).padStart(8)} req  executed ${o.executed}  replayed ${o.replayed}  rejected ${o.rejected}  released ${o.released}  no key ${o.no_key}  forwarded ${o.forwarded}  failed open ${r.stats.failedOpen}${observed}`
      })
    const stores = breakers.map((b) => `store ${b.store}: breaker ${b.state} (opened ${b.opened} times)`)
    return head + [...lines, ...stores].join('\n')
  }
  if (command === 'mode') {
    const change = body as { route: string; from: string; to: string }
    return `${head}${change.route}: ${change.from} -> ${change.to}`
  }
  if (command === 'purge') {
    const purged = body as { existed: boolean; scope: string }
    return `${head}${purged.existed ? 'purged' : 'no record to purge'} (scope ${purged.scope})`
  }
  return head + JSON.stringify(body, null, 2)
}

async function runGateway(file: string | undefined): Promise<number> {
  if (file === undefined) throw new UsageError('idem gateway needs --config idem.yaml')
  const { createGatewayFromFile } = await import('../gateway/gateway.js')
  const gateway = await createGatewayFromFile(file)
  const { url, adminUrl } = await gateway.listen()
  console.log(
    JSON.stringify({
      event: 'listening',
      url,
      adminUrl: adminUrl ?? null,
      routes: gateway.routes.map((r) => `${r.name}:${r.mode}`),
    }),
  )
  gateway.on('config_reloaded', (event) =>
    console.log(JSON.stringify({ event: 'config_reloaded', routes: event.routes })),
  )
  gateway.on('config_rejected', (event) =>
    console.error(JSON.stringify({ event: 'config_rejected', error: event.error.message })),
  )
  gateway.on('mode_switched', (event) => console.log(JSON.stringify({ event: 'mode_switched', ...event })))
  gateway.on('breaker', (event) => console.log(JSON.stringify({ event: 'breaker', ...event })))
  process.on('SIGHUP', () => {
    // The error is reported by the config_rejected event; the running configuration stays.
    gateway.reload().catch(() => undefined)
  })
  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  await gateway.close()
  return 0
}
