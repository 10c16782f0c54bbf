// One request through the gateway: find its route, then, unless the route is `off`, resolve the
// principal, apply the rate limit and the signature check, and let the HTTP core decide
// (pass, replay, refuse, or forward with the response captured). In `observe` mode every
// decision is made and counted exactly as in `enforce`, and the request is forwarded anyway.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Emitter } from '../core/emitter.js'
import type { Decision, HttpResponse } from '../http/core/types.js'
import { readBody } from '../http/node/read-body.js'
import type { GatewayEvents } from './events.js'
import {
  BODY_KEY_HEADER,
  bodyKeyHeader,
  failOpenMark,
  fieldAt,
  type GatewayRequest,
  type GatewayRoute,
} from './gateway-route.js'
import { GatewayProblem, type GatewayProblemKind, gatewayProblem } from './problems.js'
import { type ForwardOutcome, sendProblem, type UpstreamProxy } from './proxy.js'
import { RequestReport } from './request-report.js'
import { pathOf, type RouteTable } from './route-table.js'
import { verifySignature } from './signature.js'
import type { RouteOutcome } from './stats.js'

/** What one request is served by: the configuration in force when it arrived. */
export interface Generation {
  readonly table: RouteTable<GatewayRoute>
  readonly proxy: UpstreamProxy
}

/** A check before the idempotency decision refused the request (or would have, in observe mode). */
interface Refusal {
  code: string
  response: HttpResponse
}

export async function handleRequest(
  generation: Generation,
  req: IncomingMessage,
  res: ServerResponse,
  events: Emitter<GatewayEvents>,
): Promise<void> {
  const method = req.method ?? 'GET'
  const url = req.url ?? '/'
  const route = generation.table.match(method, pathOf(url))
  if (route === undefined) {
    await generation.proxy.forward(req, res, undefined)
    return
  }
  const stats = route.stats
  stats.requests++
  const mode = route.mode
  if (mode === 'off' || route.http === undefined) {
    const forwarded = await generation.proxy.forward(req, res, undefined)
    stats.upstream(forwarded.status, forwarded.failure)
    new RequestReport(route, method, events, req.headers).finish('forwarded', forwarded.status)
    return
  }
  const enforce = mode === 'enforce'
  const http = route.http
  const report = new RequestReport(route, method, events, req.headers)

  // Each check refuses in enforce mode; in observe mode it counts what it would have refused.
  let observedRefusal: Refusal | undefined
  const refuse = (refusal: Refusal): boolean => {
    if (enforce) {
      sendProblem(res, refusal.response)
      report.finish('rejected', refusal.response.status, refusal.code)
      return true
    }
    observedRefusal ??= refusal
    return false
  }

  const who = await route.principal(req.headers)
  if (!who.ok && refuse(problem('UNAUTHENTICATED', GatewayProblem.UNAUTHENTICATED, who.detail))) return
  const principal = who.ok ? who.principal : undefined

  if (route.rateLimiter !== undefined) {
    const refusal = await rateLimit(route, principal ?? `address:${req.socket.remoteAddress}`, report)
    if (refusal !== undefined && refuse(refusal)) return
  }

  // The body is read whole only when something needs it: a signature, a body key, a fingerprint.
  let body: Uint8Array | undefined
  let bodyRead = false
  const readWhole = async (): Promise<Uint8Array | undefined> => {
    if (!bodyRead) {
      body = await readBody(req, http.maxRequestBytes)
      bodyRead = true
    }
    return body
  }

  try {
    if (route.signature !== undefined) {
      const refusal = await checkSignature(route, req, await readWhole(), report)
      if (refusal !== undefined && refuse(refusal)) return
    }

    let headers: GatewayRequest['headers'] = req.headers
    let fingerprintBody: unknown
    if (route.keyBodyPath !== undefined || route.fingerprintBody !== undefined) {
      const parsed = parseJson(await readWhole())
      if (route.keyBodyPath !== undefined) {
        const { [BODY_KEY_HEADER]: _spoofed, ...rest } = req.headers
        headers = { ...rest, ...bodyKeyHeader(fieldAt(parsed, route.keyBodyPath)) }
        report.keyHeaders = headers
      }
      if (route.fingerprintBody !== undefined && parsed !== undefined) {
        fingerprintBody = route.fingerprintBody.map((path) => fieldAt(parsed, path) ?? null)
      }
    }

    if (observedRefusal !== undefined) {
      // Enforce would have refused before any key was claimed: count that, claim nothing, forward.
      route.stats.observed('rejected', observedRefusal.code)
      const forwarded = await generation.proxy.forward(req, res, bodyRead ? body : undefined)
      route.stats.upstream(forwarded.status, forwarded.failure)
      report.finish('forwarded', forwarded.status, observedRefusal.code, 'rejected')
      return
    }

    const request: GatewayRequest = {
      method,
      url,
      route: route.name,
      headers,
      body: fingerprintBody ?? (bodyRead ? (body ?? Buffer.alloc(0)) : undefined),
      readBody: readWhole,
      principal,
    }
    // Only a fail-open route can go on unprotected: only its decision needs the mark.
    const decision: Decision = await (route.failOpen
      ? failOpenMark.run(report, () => http.decide(request))
      : http.decide(request))
    await carryOut(decision, { route, req, res, generation, enforce, body: () => body, report })
  } catch (error) {
    if ((error as { code?: string }).code === 'REQUEST_TOO_LARGE') {
      const tooLarge = gatewayProblem(
        { slug: 'request-too-large', status: 413, title: 'The request body is too large' },
        `The request body is over ${http.maxRequestBytes} bytes.`,
      )
      sendProblem(res, tooLarge)
      report.finish('rejected', 413, 'REQUEST_TOO_LARGE')
      return
    }
    // The body could not be read (the client went away), or a bug: nobody to answer properly.
    res.destroy(error as Error)
  }
}

interface Context {
  route: GatewayRoute
  req: IncomingMessage
  res: ServerResponse
  generation: Generation
  enforce: boolean
  body: () => Uint8Array | undefined
  report: RequestReport
}

async function carryOut(decision: Decision, ctx: Context): Promise<void> {
  const { route, req, res, generation } = ctx
  if (decision.action === 'respond') {
    if (ctx.enforce) {
      sendProblem(res, decision.response)
      ctx.report.finish(decision.replayed ? 'replayed' : 'rejected', decision.response.status, decision.code)
      return
    }
    // Observe: count what enforce would have answered, then forward as if the gateway were not there.
    const wouldHave = decision.replayed ? 'replayed' : 'rejected'
    route.stats.observed(wouldHave, decision.code)
    const forwarded = await generation.proxy.forward(req, res, ctx.body())
    route.stats.upstream(forwarded.status, forwarded.failure)
    ctx.report.finish('forwarded', forwarded.status, decision.code, wouldHave)
    return
  }
  const capture = decision.action === 'proceed' ? decision.capture : undefined
  const forwarded: ForwardOutcome = await generation.proxy.forward(req, res, ctx.body(), capture)
  route.stats.upstream(forwarded.status, forwarded.failure)
  const outcome: RouteOutcome =
    decision.action === 'pass'
      ? 'no_key'
      : forwarded.failure !== undefined || forwarded.status >= 500
        ? 'released'
        : 'executed'
  const status = forwarded.failure === 'broken' ? undefined : forwarded.status
  ctx.report.finish(outcome, status)
}

function problem(code: string, kind: GatewayProblemKind, detail: string, headers?: Array<[string, string]>): Refusal {
  return { code, response: gatewayProblem(kind, detail, headers) }
}

async function rateLimit(route: GatewayRoute, principal: string, report: RequestReport): Promise<Refusal | undefined> {
  try {
    const verdict = await (route.rateLimiter as NonNullable<GatewayRoute['rateLimiter']>).consume(principal)
    if (verdict.allowed) return undefined
    const seconds = String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)))
    return problem(
      'RATE_LIMITED',
      GatewayProblem.RATE_LIMITED,
      `Rate limit of route "${route.name}" reached; retry later.`,
      [['retry-after', seconds]],
    )
  } catch (error) {
    return storeFailure(route, error, report)
  }
}

async function checkSignature(
  route: GatewayRoute,
  req: IncomingMessage,
  body: Uint8Array | undefined,
  report: RequestReport,
): Promise<Refusal | undefined> {
  const signature = route.signature as NonNullable<GatewayRoute['signature']>
  try {
    const verdict = await verifySignature(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: body ?? Buffer.alloc(0) },
      signature.config,
      signature.nonces,
      Date.now(),
    )
    if (verdict.ok) return undefined
    return problem(verdict.problem, GatewayProblem[verdict.problem], verdict.detail)
  } catch (error) {
    return storeFailure(route, error, report)
  }
}

/** The store behind a check failed: a fail-open route lets the request through, a fail-closed one answers 503. */
function storeFailure(route: GatewayRoute, error: unknown, report: RequestReport): Refusal | undefined {
  if (route.failOpen) {
    route.stats.failedOpen++
    report.failedOpen = true
    return undefined
  }
  return problem(
    'STORE_UNAVAILABLE',
    GatewayProblem.STORE_UNAVAILABLE,
    `The store of route "${route.name}" is unavailable (${(error as Error)?.message ?? error}); retry later.`,
    [['retry-after', '1']],
  )
}

function parseJson(body: Uint8Array | undefined): unknown {
  if (body === undefined || body.byteLength === 0) return undefined
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
  } catch {
    return undefined
  }
}
