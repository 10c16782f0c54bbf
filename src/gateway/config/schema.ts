// The gateway's configuration file, as a schema: what every field means, its default, and the
// checks that refuse a bad file with the field and the reason before anything starts.

import { z } from 'zod'
import { toMs } from '../../contract/duration.js'

/** A duration as the rest of Idem takes it: milliseconds, or '500ms', '30s', '5m', '24h', '7d'. Parsed to ms. */
const duration = z
  // Without its own message a union only says "Invalid input" when neither branch fits (say, `true`).
  .union([z.number(), z.string()], {
    error: 'must be milliseconds or a string such as "500ms", "30s", "5m", "24h", "7d"',
  })
  .transform((value, ctx) => {
    try {
      return toMs(value)
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message })
      return z.NEVER
    }
  })

const portRange = 'must be a port number from 0 to 65535 (0: any free port)'
const port = z.number().int(portRange).min(0, portRange).max(65_535, portRange)
const listen = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port,
})

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })

/** The upstream every request is forwarded to. */
const upstream = z.strictObject({
  /** Origin of the upstream, e.g. http://127.0.0.1:3000. A path here is prefixed to every request's path. */
  url: httpUrl,
  /** Longest wait for the upstream's response headers: then 504. */
  timeout: duration.default(30_000),
  /** Longest the upstream may take to accept a connection: then 504, as nginx answers (a refused connection is 502). */
  connectTimeout: duration.default(5_000),
  /** Keep-alive connections kept open to the upstream. */
  connections: z.number().int().min(1).max(10_000).default(128),
})

const storeConfig = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('memory') }),
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1) }),
  z.strictObject({
    type: z.literal('redis'),
    url: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }),
    prefix: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('postgres'),
    url: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }),
    table: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('mysql'),
    url: z.url({ protocol: /^(mysql|mariadb)$/, error: 'must be a mysql:// URL' }),
    table: z.string().optional(),
  }),
])

/** The circuit breaker in front of each store. */
const breaker = z.strictObject({
  /** Consecutive store failures that open the breaker. */
  failures: z.number().int().min(1).default(5),
  /** How long it stays open before one probe call is let through (half-open). */
  halfOpenAfter: duration.default(5_000),
})

export const MODES = ['off', 'observe', 'enforce'] as const
/** `off`: proxy only. `observe`: decide as if enforcing, record it, forward everything. `enforce`: replay and reject. */
export type Mode = (typeof MODES)[number]

/** A dotted path into a JSON body: `id`, `payment.id`. */
const bodyPath = z
  .string()
  .regex(/^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*$/, 'must be a dotted field path such as payment.id')

const keySource = z.union([z.strictObject({ header: z.string().min(1) }), z.strictObject({ body: bodyPath })], {
  error: 'must be either { header: <header name> } or { body: <field path> }',
})

/** The JWS algorithms jose verifies. `none` is not one of them. */
export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]
const HMAC_ALGORITHMS: readonly JwtAlgorithm[] = ['HS256', 'HS384', 'HS512']

const jwt = z
  .strictObject({
    /** Shared secret for HS256/384/512. */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** PEM public key (SPKI) for RS*, PS*, ES*, EdDSA: the key itself or a file path. */
    publicKey: z.string().min(1).optional(),
    /** Accepted `alg` values. Required with publicKey; with secret, default HS256, HS384 and HS512. */
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).optional(),
    issuer: z.string().optional(),
    audience: z.string().optional(),
    /** The header carrying `Bearer <token>`. */
    header: z.string().min(1).default('authorization'),
  })
  .superRefine((value, ctx) => {
    if ((value.secret === undefined) === (value.publicKey === undefined)) {
      // What the algorithms must fit depends on which one is meant: nothing more to say until then.
      ctx.addIssue({ code: 'custom', message: 'give exactly one of secret or publicKey' })
      return
    }
    // A public key fits several algorithms (RS256 and PS256 for one RSA key): pinning them here is what
    // stops a token from choosing a weaker one.
    if (value.publicKey !== undefined && value.algorithms === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'required with publicKey, e.g. [ES256] or [EdDSA]',
      })
    }
    if (value.secret !== undefined && value.algorithms?.some((alg) => !HMAC_ALGORITHMS.includes(alg))) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: `a secret only verifies ${HMAC_ALGORITHMS.join(', ')}; use publicKey for the others`,
      })
    }
  })

const principal = z.union([z.strictObject({ header: z.string().min(1) }), z.strictObject({ jwt })], {
  error: 'must be either { header: <header name> } or { jwt: { ... } }',
})

const rateLimit = z.strictObject({
  /** Requests each principal may make per window. */
  requests: z.number().int().min(1),
  /** The window. */
  per: duration,
  /** Store the counters are shared through (every replica on it sees the same counts). Default: the route's store. */
  store: z.string().min(1).optional(),
})

const signature = z.strictObject({
  /** HMAC-SHA256 secret shared with the clients. */
  secret: z.string().min(32, 'must be at least 32 characters'),
  /** How far a request's timestamp may be from the gateway's clock, either way; nonces are kept this long. */
  window: duration.default(300_000),
})

const route = z.strictObject({
  /** Unique name: in metrics, the admin API and the record's scope. */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . or -'),
  match: z.strictObject({
    /** Methods the route covers. Default POST and PATCH. */
    methods: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z]+$/, 'must be an HTTP method such as POST')
          .transform((m) => m.toUpperCase()),
      )
      .min(1)
      .default(['POST', 'PATCH']),
    /** Path pattern: literal segments, `:name` for one segment, a final `*` for the rest. */
    path: z.string().regex(/^\/[^?#\s]*$/, 'must start with / and have no query, fragment or space'),
  }),
  mode: z.enum(MODES).optional(),
  store: z.string().min(1).optional(),
  key: keySource.optional(),
  /** A request without a key is refused (400) instead of forwarded unprotected. */
  required: z.boolean().optional(),
  /** What makes two requests with one key "the same": request headers, and body fields (default: the whole body). */
  fingerprint: z
    .strictObject({
      headers: z
        .array(
          z
            .string()
            .min(1)
            .transform((h) => h.toLowerCase()),
        )
        .default([]),
      body: z.array(bodyPath).min(1).optional(),
    })
    .optional(),
  ttl: duration.optional(),
  lease: duration.optional(),
  principal: principal.optional(),
  /** When the store fails or its breaker is open: forward unprotected (`open`) or answer 503 (`closed`). */
  onStoreFailure: z.enum(['open', 'closed']).optional(),
  rateLimit: rateLimit.optional(),
  signature: signature.optional(),
})

/** Route settings that `defaults` may give for every route. */
const routeDefaults = z.strictObject({
  mode: z.enum(MODES).default('enforce'),
  store: z.string().min(1).optional(),
  key: keySource.default({ header: 'Idempotency-Key' }),
  required: z.boolean().default(false),
  ttl: duration.default(86_400_000),
  lease: duration.default(30_000),
  principal: principal.optional(),
  onStoreFailure: z.enum(['open', 'closed']).default('closed'),
})

const admin = z.strictObject({
  listen: listen,
  /** Bearer token every admin request must carry; at least 16 characters. Use `${ENV_VAR}`. */
  token: z.string().min(16, 'must be at least 16 characters'),
})

/** Where the audit log's key ids and the checkpoint signer's id come from: short names. */
const keyId = z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'must be 1-32 letters, digits, _ . or -')

/**
 * The tamper-evident audit log (docs/audit.md): every decision and every operator action,
 * encrypted and hash-chained, in a file or a PostgreSQL table. Opened when the gateway starts;
 * a change needs a restart.
 */
const audit = z
  .strictObject({
    /** The log file (one entry per line), created if missing. Give `file` or `postgres`. */
    file: z.string().min(1).optional(),
    /** A PostgreSQL table instead of a file (created at start if missing). */
    postgres: z
      .strictObject({
        url: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }),
        table: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a table name such as idem_audit')
          .optional(),
      })
      .optional(),
    /** `file` only: fsync after every append (`always`), about once a second (`interval`), or never (`none`). */
    sync: z.enum(['always', 'interval', 'none']).optional(),
    /** The encryption keys, "k1:<base64>,k2:<base64>": write `${IDEM_AUDIT_KEYS}`, never the keys themselves. */
    keys: z.string().min(1, 'required: the keys, "k1:<base64 of 32 bytes>", from the environment (IDEM_AUDIT_KEYS)'),
    /** The key id new entries are encrypted with. Default: the last one in `keys`. */
    active: keyId.optional(),
    alg: z.enum(['aes-256-gcm', 'sm4-ctr-hmac-sm3']).default('aes-256-gcm'),
    /** The Ed25519 key that signs checkpoints: its id, and the PEM (PKCS#8) itself or a file path. */
    signingKey: z.strictObject({ id: keyId, privateKey: z.string().min(1) }).optional(),
    /**
     * When a checkpoint is signed: after this many entries, and/or this long after the last one.
     * `file`: also append each checkpoint, `{ upTo, head, sig, signer, time }` as a JSON line, to
     * this file (put it on another disk or host): `idem audit verify --expect-file` then catches
     * a tail cut after the last checkpoint the log still holds.
     */
    checkpoint: z
      .strictObject({
        everyEntries: z.number().int().min(1).optional(),
        every: duration.optional(),
        file: z.string().min(1).optional(),
      })
      .optional(),
    /** Events waiting to be written: at most `max`; when full, wait (`block`), lose the event (`drop`) or fail (`fail`). */
    queue: z
      .strictObject({
        max: z.number().int().min(1).optional(),
        onFull: z.enum(['block', 'drop', 'fail']).optional(),
      })
      .optional(),
    /** Which decisions are recorded: `all`, or `rejections` (all but executed, no_key and forwarded). */
    decisions: z.enum(['all', 'rejections']).default('all'),
  })
  .superRefine((value, ctx) => {
    if ((value.file === undefined) === (value.postgres === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of file or postgres' })
    }
    if (value.sync !== undefined && value.file === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['sync'],
        message: 'only applies to a file (PostgreSQL commits each append)',
      })
    }
    if (value.checkpoint !== undefined && value.signingKey === undefined) {
      ctx.addIssue({ code: 'custom', path: ['checkpoint'], message: 'checkpoints are signed: give signingKey too' })
    }
  })

export const gatewayConfigSchema = z
  .strictObject({
    listen: listen,
    upstream: upstream,
    admin: admin.optional(),
    stores: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'store names are letters, digits, _ or -'), storeConfig),
    breaker: breaker.default({ failures: 5, halfOpenAfter: 5_000 }),
    defaults: routeDefaults.default({
      mode: 'enforce',
      key: { header: 'Idempotency-Key' },
      required: false,
      ttl: 86_400_000,
      lease: 30_000,
      onStoreFailure: 'closed',
    }),
    routes: z.array(route).default([]),
    /** Serve Prometheus metrics on the admin port at /metrics (needs prom-client). */
    metrics: z.boolean().default(true),
    /** The tamper-evident audit log of decisions and operator actions (docs/audit.md). */
    audit: audit.optional(),
  })
  .superRefine((config, ctx) => {
    const storeNames = Object.keys(config.stores)
    const known = (name: string | undefined) => name === undefined || storeNames.includes(name)
    if (config.defaults.store !== undefined && !known(config.defaults.store)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaults', 'store'],
        message: unknownStore(config.defaults.store, storeNames),
      })
    }
    const seen = new Set<string>()
    config.routes.forEach((r, i) => {
      if (seen.has(r.name))
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'name'],
          message: `"${r.name}" is used by an earlier route`,
        })
      seen.add(r.name)
      const store = r.store ?? config.defaults.store
      if (store === undefined && (r.mode ?? config.defaults.mode) !== 'off') {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'store'],
          message: 'needed (or defaults.store) unless the mode is off',
        })
      } else if (r.store !== undefined && !known(r.store)) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'store'], message: unknownStore(r.store, storeNames) })
      }
      if (r.rateLimit?.store !== undefined && !known(r.rateLimit.store)) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'rateLimit', 'store'],
          message: unknownStore(r.rateLimit.store, storeNames),
        })
      } else if (r.rateLimit !== undefined && r.rateLimit.store === undefined && store === undefined) {
        // The counters default to the route's store; a route without one (mode off) must name it.
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'rateLimit', 'store'],
          message: 'needed: the route has no store to keep the counters in',
        })
      }
    })
  })

function unknownStore(name: string, names: readonly string[]): string {
  return `no store named "${name}" (stores: ${names.length === 0 ? 'none' : names.join(', ')})`
}

/** The configuration file as written (durations as strings, defaults optional). */
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>
/** The configuration after validation: durations in ms, defaults filled in. */
export type GatewayConfig = z.output<typeof gatewayConfigSchema>
export type RouteConfig = GatewayConfig['routes'][number]
export type RouteDefaults = GatewayConfig['defaults']
export type StoreConfig = GatewayConfig['stores'][string]
export type PrincipalConfig = NonNullable<RouteConfig['principal']>
export type RateLimitConfig = NonNullable<RouteConfig['rateLimit']>
export type SignatureConfig = NonNullable<RouteConfig['signature']>
export type KeySource = NonNullable<RouteConfig['key']>
export type AuditConfig = NonNullable<GatewayConfig['audit']>
