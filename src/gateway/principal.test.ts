import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PrincipalConfig } from './config/schema.js'
import { principalResolver } from './principal.js'

const SECRET = 'a-jwt-secret-that-is-32-characters-long'
const ISSUER = 'https://auth.example.com'

function hsConfig(overrides: Partial<Extract<PrincipalConfig, { jwt: unknown }>['jwt']> = {}): PrincipalConfig {
  return { jwt: { secret: SECRET, header: 'authorization', ...overrides } }
}

async function hsToken(
  claims: Record<string, unknown>,
  { secret = SECRET, expiresIn = '5m' }: { secret?: string; expiresIn?: string | number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret))
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** EdDSA needs its curve named; ES256 has only one. Extractable so that the public key can be exported. */
const keyOptions = (alg: 'EdDSA' | 'ES256') =>
  alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true }

describe('principalResolver without a principal setting', () => {
  it('is the authorization header, synchronously', () => {
    const resolve = principalResolver(undefined)
    expect(resolve({ authorization: 'Bearer abc' })).toEqual({ ok: true, principal: 'Bearer abc' })
    expect(resolve({})).toEqual({ ok: true, principal: undefined })
  })
})

describe('principalResolver with a header', () => {
  const resolve = principalResolver({ header: 'X-Tenant-Id' })

  it("is that header's value, looked up by its lower-case name, without a promise", () => {
    const result = resolve({ 'x-tenant-id': 'tenant-7', authorization: 'Bearer other' })
    expect(result).not.toBeInstanceOf(Promise)
    expect(result).toEqual({ ok: true, principal: 'tenant-7' })
  })

  it('is anonymous when the header is missing or empty', () => {
    expect(resolve({ authorization: 'Bearer other' })).toEqual({ ok: true, principal: undefined })
    expect(resolve({ 'x-tenant-id': '' })).toEqual({ ok: true, principal: undefined })
  })

  it('refuses a header sent twice rather than pick one', () => {
    expect(resolve({ 'x-tenant-id': ['a', 'b'] })).toEqual({
      ok: false,
      detail: 'the x-tenant-id header must be sent once',
    })
  })
})

describe('principalResolver with an HS256 JWT', () => {
  const resolve = principalResolver(hsConfig({ issuer: ISSUER, audience: 'payments' }))

  it("is the token's subject", async () => {
    const token = await hsToken({ sub: 'user-42', iss: ISSUER, aud: 'payments' })
    expect(await resolve(bearer(token))).toEqual({ ok: true, principal: 'user-42' })
  })

  it('is anonymous without the header, and answers that without a promise', () => {
    expect(resolve({})).toEqual({ ok: true, principal: undefined })
  })

  it('refuses an expired token', async () => {
    const token = await hsToken(
      { sub: 'user-42', iss: ISSUER, aud: 'payments' },
      { expiresIn: Math.floor(Date.now() / 1000) - 60 },
    )
    expect(await resolve(bearer(token))).toEqual({ ok: false, detail: 'the token has expired' })
  })

  it('refuses a token signed with another secret', async () => {
    const token = await hsToken({ sub: 'user-42', iss: ISSUER, aud: 'payments' }, { secret: 'x'.repeat(40) })
    expect(await resolve(bearer(token))).toEqual({ ok: false, detail: 'the token signature is not valid' })
  })

  it('refuses a token without a subject', async () => {
    const token = await hsToken({ iss: ISSUER, aud: 'payments' })
    expect(await resolve(bearer(token))).toEqual({ ok: false, detail: 'the token has no subject ("sub" claim)' })
  })

  it('refuses a token from another issuer or for another audience', async () => {
    const otherIssuer = await hsToken({ sub: 'user-42', iss: 'https://evil.example.com', aud: 'payments' })
    expect(await resolve(bearer(otherIssuer))).toEqual({
      ok: false,
      detail: 'the token\'s "iss" claim is not accepted',
    })
    const otherAudience = await hsToken({ sub: 'user-42', iss: ISSUER, aud: 'billing' })
    expect(await resolve(bearer(otherAudience))).toEqual({
      ok: false,
      detail: 'the token\'s "aud" claim is not accepted',
    })
  })

  it('refuses a header that is not a bearer token, and garbage', async () => {
    expect(resolve({ authorization: 'Basic dXNlcjpwYXNz' })).toEqual({
      ok: false,
      detail: 'the authorization header must be "Bearer <token>"',
    })
    expect(await resolve(bearer('not.a.jwt'))).toEqual({ ok: false, detail: 'the token is malformed' })
  })

  it('reads the token from the configured header', async () => {
    const resolveCustom = principalResolver(hsConfig({ header: 'X-Auth' }))
    const token = await hsToken({ sub: 'svc' })
    expect(await resolveCustom({ 'x-auth': `Bearer ${token}` })).toEqual({ ok: true, principal: 'svc' })
    expect(resolveCustom(bearer(token))).toEqual({ ok: true, principal: undefined })
  })
})

describe('principalResolver with a public key', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'idem-principal-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it.each(['EdDSA', 'ES256'] as const)('verifies %s tokens against a PEM file', async (alg) => {
    const { publicKey, privateKey } = await generateKeyPair(alg, keyOptions(alg))
    const file = join(dir, `${alg}.pem`)
    await writeFile(file, await exportSPKI(publicKey))
    const resolve = principalResolver({ jwt: { publicKey: file, algorithms: [alg], header: 'authorization' } })

    const token = await new SignJWT({ sub: 'device-9' })
      .setProtectedHeader({ alg })
      .setExpirationTime('1m')
      .sign(privateKey)
    expect(await resolve(bearer(token))).toEqual({ ok: true, principal: 'device-9' })

    // A key pair of the same kind that is not the configured one.
    const other = await generateKeyPair(alg, keyOptions(alg))
    const forged = await new SignJWT({ sub: 'device-9' }).setProtectedHeader({ alg }).sign(other.privateKey)
    expect(await resolve(bearer(forged))).toEqual({ ok: false, detail: 'the token signature is not valid' })

    // An HMAC token "signed" with the public key's text: the classic algorithm-confusion forgery.
    const confused = await hsToken({ sub: 'admin' }, { secret: await exportSPKI(publicKey) })
    expect(await resolve(bearer(confused))).toEqual({
      ok: false,
      detail: `the token's algorithm is not accepted (accepted: ${alg})`,
    })
  })

  it('takes the PEM text itself', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const resolve = principalResolver({
      jwt: { publicKey: await exportSPKI(publicKey), algorithms: ['ES256'], header: 'authorization' },
    })
    const token = await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey)
    expect(await resolve(bearer(token))).toEqual({ ok: true, principal: 'u' })
  })

  it('fails at construction, not per request, for a missing file, a non-key or algorithms the key cannot verify', async () => {
    const missing = join(dir, 'missing.pem')
    expect(() =>
      principalResolver({ jwt: { publicKey: missing, algorithms: ['ES256'], header: 'authorization' } }),
    ).toThrowError(`jwt.publicKey: cannot read ${missing}`)

    const garbage = join(dir, 'garbage.pem')
    await writeFile(garbage, '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n')
    expect(() =>
      principalResolver({ jwt: { publicKey: garbage, algorithms: ['ES256'], header: 'authorization' } }),
    ).toThrowError('jwt.publicKey: not a PEM public key')

    const { publicKey } = await generateKeyPair('ES256', { extractable: true })
    const pem = await exportSPKI(publicKey)
    expect(() =>
      principalResolver({ jwt: { publicKey: pem, algorithms: ['RS256'], header: 'authorization' } }),
    ).toThrowError('jwt.algorithms: RS256 cannot be verified with this ec key (it verifies ES256)')
    expect(() => principalResolver({ jwt: { publicKey: pem, header: 'authorization' } })).toThrowError(
      'jwt.algorithms is required with publicKey',
    )
  })
})
