// `errorTypes`: a replayed `isFinal` error restored as an instance of its class, in run and
// transaction mode; without the option, the plain Error replay of before.

import { describe, expect, it } from 'vitest'
import { sqliteRig } from '../../test/support/transaction/transaction-rigs.test-helper.js'
import { IdempotencyError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { Idempotency } from './idempotency.js'

class CardDeclinedError extends Error {
  override name = 'CardDeclinedError'
  constructor(
    readonly reason: string,
    readonly details: { attempt: number },
  ) {
    super(`card declined: ${reason}`)
  }
  get summary(): string {
    return `${this.reason} (${this.details.attempt})`
  }
}

/** Its instances carry a `name` different from the class name, set on the prototype. */
class OutOfStockError extends Error {
  constructor(readonly sku: string) {
    super(`${sku} is out of stock`)
  }
}
OutOfStockError.prototype.name = 'out_of_stock'

/** Registered by an explicit name, and with a constructor that must not run on replay. */
class QuotaError extends Error {
  static constructed = 0
  constructor() {
    super('quota exceeded')
    QuotaError.constructed++
    this.name = 'quota'
  }
}

const isFinal = (error: unknown) =>
  error instanceof CardDeclinedError || error instanceof OutOfStockError || error instanceof QuotaError

/** The error the first execution throws and the one its duplicate gets. */
async function firstAndReplay(idem: Idempotency, key: string, error: Error): Promise<[unknown, unknown]> {
  const first = await idem.run({ key }, () => Promise.reject(error)).catch((e: unknown) => e)
  const again = await idem.run({ key }, () => 'never').catch((e: unknown) => e)
  return [first, again]
}

describe('errorTypes in run mode', () => {
  it('restores the class of a replayed isFinal error, with its stored properties', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), isFinal, errorTypes: [CardDeclinedError] })
    const [first, replayed] = await firstAndReplay(
      idem,
      'k',
      new CardDeclinedError('insufficient funds', { attempt: 1 }),
    )
    expect(first).toBeInstanceOf(CardDeclinedError)
    expect(replayed).not.toBe(first)
    expect(replayed).toBeInstanceOf(CardDeclinedError)
    expect(replayed).toBeInstanceOf(Error)
    const error = replayed as CardDeclinedError & { replayed?: boolean }
    expect(error.name).toBe('CardDeclinedError')
    expect(error.message).toBe('card declined: insufficient funds')
    expect(error.reason).toBe('insufficient funds')
    expect(error.details).toEqual({ attempt: 1 })
    expect(error.summary).toBe('insufficient funds (1)')
    expect(error.replayed).toBe(true)
    expect(Object.keys(error)).not.toContain('replayed')
  })

  it('matches a name set on the prototype, and an explicit record without calling the constructor', async () => {
    const idem = new Idempotency({
      store: new MemoryStore(),
      isFinal,
      errorTypes: { out_of_stock: OutOfStockError, quota: QuotaError },
    })
    const [, outOfStock] = await firstAndReplay(idem, 'a', new OutOfStockError('sku-1'))
    expect(outOfStock).toBeInstanceOf(OutOfStockError)
    expect((outOfStock as OutOfStockError).sku).toBe('sku-1')
    expect((outOfStock as Error).name).toBe('out_of_stock')

    const before = QuotaError.constructed
    const [, quota] = await firstAndReplay(idem, 'b', new QuotaError())
    expect(QuotaError.constructed).toBe(before + 1)
    expect(quota).toBeInstanceOf(QuotaError)
    expect((quota as Error).name).toBe('quota')
    expect((quota as Error).message).toBe('quota exceeded')

    const listed = new Idempotency({ store: new MemoryStore(), isFinal, errorTypes: [OutOfStockError] })
    const [, byPrototypeName] = await firstAndReplay(listed, 'c', new OutOfStockError('sku-2'))
    expect(byPrototypeName).toBeInstanceOf(OutOfStockError)
  })

  it('restores from the local cache too', async () => {
    const idem = new Idempotency({
      store: new MemoryStore(),
      isFinal,
      errorTypes: [CardDeclinedError],
      cache: { maxEntries: 10 },
    })
    const [, replayed] = await firstAndReplay(idem, 'k', new CardDeclinedError('expired', { attempt: 2 }))
    expect(replayed).toBeInstanceOf(CardDeclinedError)
  })

  it('replays a plain Error with the same name and properties without the option (or for an unregistered name)', async () => {
    for (const errorTypes of [undefined, [OutOfStockError]]) {
      const idem = new Idempotency({ store: new MemoryStore(), isFinal, errorTypes })
      const [, replayed] = await firstAndReplay(idem, 'k', new CardDeclinedError('insufficient funds', { attempt: 1 }))
      expect(replayed).not.toBeInstanceOf(CardDeclinedError)
      expect(Object.getPrototypeOf(replayed)).toBe(Error.prototype)
      expect(replayed).toMatchObject({ name: 'CardDeclinedError', reason: 'insufficient funds', replayed: true })
    }
  })

  it("keeps Idem's own errors IdempotencyError when unregistered", async () => {
    const idem = new Idempotency({ store: new MemoryStore(), isFinal: () => true, errorTypes: [CardDeclinedError] })
    const [, replayed] = await firstAndReplay(idem, 'k', new IdempotencyError('STATE_TRANSITION_REJECTED', 'refused'))
    expect(replayed).toBeInstanceOf(IdempotencyError)
    expect(replayed).toMatchObject({ code: 'STATE_TRANSITION_REJECTED', message: 'refused', replayed: true })
  })

  it('refuses an entry that is not an Error class, naming the option', () => {
    expect(() => new Idempotency({ store: new MemoryStore(), errorTypes: [class NotAnError {}] as never })).toThrow(
      /errorTypes: NotAnError is not an Error class/,
    )
    expect(() => new Idempotency({ store: new MemoryStore(), errorTypes: 'CardDeclinedError' as never })).toThrow(
      TypeError,
    )
  })
})

describe('errorTypes in transaction mode', () => {
  it('restores the class of a replayed isFinal error', async () => {
    const rig = await sqliteRig()
    try {
      const idem = rig.idem({ isFinal, errorTypes: [CardDeclinedError] })
      const first = await idem
        .transaction(rig.db, { key: 'tx' }, async (_tx, ctx) => {
          await rig.addEffect(ctx.sql, 'tx')
          throw new CardDeclinedError('stolen card', { attempt: 3 })
        })
        .catch((e: unknown) => e)
      expect(first).toBeInstanceOf(CardDeclinedError)
      const replayed = await rig
        .idem({ errorTypes: [CardDeclinedError] })
        .transaction(rig.db, { key: 'tx' }, () => 'never')
        .catch((e: unknown) => e)
      expect(replayed).toBeInstanceOf(CardDeclinedError)
      expect((replayed as CardDeclinedError).details).toEqual({ attempt: 3 })
      expect(await rig.effect('tx')).toBe(0)

      const plain = await rig
        .idem()
        .transaction(rig.db, { key: 'tx' }, () => 'never')
        .catch((e: unknown) => e)
      expect(Object.getPrototypeOf(plain)).toBe(Error.prototype)
      expect(plain).toMatchObject({ name: 'CardDeclinedError', reason: 'stolen card' })
    } finally {
      await rig.cleanup()
    }
  })
})
