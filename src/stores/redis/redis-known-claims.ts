// The claims of attempt 1 this RedisStore made and has not settled yet, by owner token, so that
// completing one needs no parsing on Redis: the store builds the completed record here and the
// completion script only checks that the token still owns the claim before writing it
// (redis-scripts.ts, COMPLETE_KNOWN). Any other claim (a takeover's, another process's, or one
// forgotten because too many are open) completes by the script that reads the record. Only this
// process's memory: nothing here decides who owns a claim, only how its completion is written.

/** What the completed record of a claim carries over from it. */
export interface KnownClaim {
  /** When the claim was made, epoch ms (Redis' clock when a script reported it, else this process's estimate). */
  readonly createdAt: number
  readonly fingerprint: string
  /** The fingerprint's length in UTF-8 bytes, as records count it. */
  readonly fingerprintBytes: number
}

/**
 * Open claims at most; past it, new claims are not remembered (they complete by the reading
 * script). Far more than a busy process holds at once; a bound against claims never settled.
 */
const MAX_OPEN_CLAIMS = 10_000

export class KnownClaims {
  readonly #byToken = new Map<string, KnownClaim>()

  remember(token: string, claim: KnownClaim): void {
    if (this.#byToken.size < MAX_OPEN_CLAIMS) this.#byToken.set(token, claim)
  }

  /** The claim of `token`, forgotten as it is returned (a completion settles it). */
  take(token: string): KnownClaim | undefined {
    const claim = this.#byToken.get(token)
    if (claim !== undefined) this.#byToken.delete(token)
    return claim
  }

  forget(token: string): void {
    this.#byToken.delete(token)
  }

  clear(): void {
    this.#byToken.clear()
  }
}

/**
 * The completed record of a claim of attempt 1, `c1,<createdAt>,<completedAt>,,<fingerprint
 * bytes>,<fingerprint><result>`, completed now by this process's clock.
 */
export function completedRecord(claim: KnownClaim, result: string): string {
  const completedAt = Math.max(Date.now(), claim.createdAt)
  return `c1,${claim.createdAt},${completedAt},,${claim.fingerprintBytes},${claim.fingerprint}${result}`
}
