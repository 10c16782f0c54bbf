// Who is calling: the principal a route's idempotency records (and rate limits) are scoped by, so that
// two clients sending the same Idempotency-Key never see each other's responses. Either a header's
// value as is (a gateway in front has authenticated it), or the subject of a verified JWT.

import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { errors, type JWTVerifyOptions, jwtVerify } from 'jose'
import type { JwtAlgorithm, PrincipalConfig } from './config/schema.js'

/** `principal: undefined` is an anonymous request (no credentials); `ok: false` is answered 401 with `detail`. */
export type PrincipalResult = { ok: true; principal: string | undefined } | { ok: false; detail: string }

/** Request headers as Node gives them: lower-case names. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | number | undefined>>

export type PrincipalResolver = (headers: RequestHeaders) => Promise<PrincipalResult> | PrincipalResult

type JwtConfig = Extract<PrincipalConfig, { jwt: unknown }>['jwt']

const ANONYMOUS: PrincipalResult = { ok: true, principal: undefined }
const HMAC_ALGORITHMS: readonly JwtAlgorithm[] = ['HS256', 'HS384', 'HS512']

/**
 * The resolver for a route's `principal` setting. Without one, the `authorization` header's value
 * (what the HTTP middleware scopes by too). A JWT key that cannot be used (a missing file, not a
 * public key, algorithms that do not fit it) throws here, at startup, not on the first request.
 */
export function principalResolver(config: PrincipalConfig | undefined): PrincipalResolver {
  if (config === undefined) return headerPrincipal('authorization')
  if ('header' in config) return headerPrincipal(config.header)
  return jwtPrincipal(config.jwt)
}

/** A header's value as the principal; synchronous, since this runs on every request. */
function headerPrincipal(name: string): PrincipalResolver {
  const header = name.toLowerCase()
  return (headers) => {
    const value = singleValue(headers, header)
    return typeof value === 'string' ? { ok: true, principal: value } : value
  }
}

function jwtPrincipal(config: JwtConfig): PrincipalResolver {
  const { key, algorithms } = verificationKey(config)
  const header = config.header.toLowerCase()
  const options: JWTVerifyOptions = {
    algorithms: [...algorithms],
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: ['sub'],
  }
  return (headers) => {
    const value = singleValue(headers, header)
    if (typeof value !== 'string') return value
    const bearer = /^Bearer +([^\s]+) *$/i.exec(value)
    if (bearer?.[1] === undefined) return { ok: false, detail: `the ${header} header must be "Bearer <token>"` }
    return verifyToken(bearer[1], key, options)
  }
}

async function verifyToken(
  token: string,
  key: KeyObject | Uint8Array,
  options: JWTVerifyOptions,
): Promise<PrincipalResult> {
  try {
    const { payload } = await jwtVerify(token, key, options)
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      return { ok: false, detail: 'the token has no subject ("sub" claim)' }
    }
    return { ok: true, principal: payload.sub }
  } catch (error) {
    return { ok: false, detail: tokenProblem(error, options) }
  }
}

/**
 * What is wrong with a refused token, in words for the client's developer. It says which check failed
 * (expired, signature, issuer) but never echoes what was expected beyond the accepted algorithms.
 */
function tokenProblem(error: unknown, options: JWTVerifyOptions): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired'
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'the token is not valid yet'
    if (error.reason === 'missing') {
      return error.claim === 'sub'
        ? 'the token has no subject ("sub" claim)'
        : `the token has no "${error.claim}" claim`
    }
    return `the token's "${error.claim}" claim is not accepted`
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is not valid'
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return `the token's algorithm is not accepted (accepted: ${options.algorithms?.join(', ')})`
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'the token is malformed'
  return 'the token cannot be verified'
}

/**
 * The header's one value; `undefined` when absent or empty; a refusal when it was sent more than once,
 * since picking one of several credentials would let a client choose whose records it reads.
 */
function singleValue(headers: RequestHeaders, name: string): string | PrincipalResult {
  const raw = headers[name]
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)]
  if (values.length > 1) return { ok: false, detail: `the ${name} header must be sent once` }
  const value = values[0]
  return value === undefined || value.trim() === '' ? ANONYMOUS : value
}

// ---------------------------------------------------------------------------------------------
// Keys

function verificationKey(config: JwtConfig): { key: KeyObject | Uint8Array; algorithms: readonly JwtAlgorithm[] } {
  if (config.secret !== undefined) {
    const algorithms = config.algorithms ?? HMAC_ALGORITHMS
    requireFit(algorithms, HMAC_ALGORITHMS, 'a secret')
    return { key: new TextEncoder().encode(config.secret), algorithms }
  }
  if (config.publicKey === undefined) throw new Error('jwt: give secret or publicKey')
  // A public key fits several algorithms; accepting whatever a token names is how alg confusion starts.
  if (config.algorithms === undefined) throw new Error('jwt.algorithms is required with publicKey, e.g. [ES256]')
  const key = publicKey(config.publicKey)
  requireFit(config.algorithms, algorithmsFor(key), `this ${key.asymmetricKeyType ?? 'unknown'} key`)
  return { key, algorithms: config.algorithms }
}

/**
 * The key itself (PEM text) or a file holding it, read once. A Node KeyObject rather than jose's
 * importSPKI: it is synchronous, so a bad key fails at startup, and one key serves every algorithm
 * listed (RS256 and PS256), where an imported CryptoKey is bound to a single one.
 */
function publicKey(keyOrPath: string): KeyObject {
  let pem = keyOrPath
  if (!keyOrPath.trimStart().startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(keyOrPath, 'utf8')
    } catch (error) {
      throw new Error(`jwt.publicKey: cannot read ${keyOrPath}: ${(error as Error).message}`)
    }
  }
  try {
    return createPublicKey(pem)
  } catch (error) {
    throw new Error(`jwt.publicKey: not a PEM public key: ${(error as Error).message}`)
  }
}

const EC_ALGORITHM_BY_CURVE: Readonly<Record<string, JwtAlgorithm>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
}

/** The JWS algorithms a public key can verify. */
function algorithmsFor(key: KeyObject): readonly JwtAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512']
    case 'ec': {
      const algorithm = EC_ALGORITHM_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? '']
      return algorithm === undefined ? [] : [algorithm]
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519']
    default:
      return []
  }
}

function requireFit(algorithms: readonly JwtAlgorithm[], usable: readonly JwtAlgorithm[], what: string): void {
  const unusable = algorithms.filter((algorithm) => !usable.includes(algorithm))
  if (unusable.length > 0) {
    const fits = usable.length > 0 ? `it verifies ${usable.join(', ')}` : 'it is not a supported key type'
    throw new Error(`jwt.algorithms: ${unusable.join(', ')} cannot be verified with ${what} (${fits})`)
  }
}
