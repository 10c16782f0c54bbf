// IdemMessageInterceptor without a transport: which outcomes it acks. A result and its replay are
// acked; an `isFinal` error is stored, so it and its replay to a duplicate are acked too (else the
// transport would hold or redeliver the message forever); an error that released the key is not.

import type { CallHandler, ExecutionContext } from '@nestjs/common'
import type { Reflector } from '@nestjs/core'
import { lastValueFrom, of, throwError } from 'rxjs'
import { describe, expect, it } from 'vitest'
import { Idempotency, MemoryStore } from '../../index.js'
import { IdemMessageInterceptor, type IdempotentMessageOptions } from './message-interceptor.js'

class CardDeclined extends Error {
  override name = 'CardDeclined'
}

function setup(
  options: Partial<IdempotentMessageOptions<{ id: string }>> = {},
  idemFinal?: (e: unknown) => boolean,
  handlerType: 'message' | 'event' = 'message',
) {
  const acked: string[] = []
  const idem = new Idempotency({ store: new MemoryStore(), ...(idemFinal === undefined ? {} : { isFinal: idemFinal }) })
  const messageOptions: IdempotentMessageOptions<{ id: string }> = {
    key: (data) => data.id,
    ack: (_context, data) => acked.push(data.id),
    ...options,
  }
  class Handlers {
    charge() {}
  }
  // What @MessagePattern / @EventPattern record on the handler (PatternHandler.MESSAGE = 1, EVENT = 2).
  Reflect.defineMetadata('microservices:handler_type', handlerType === 'event' ? 2 : 1, Handlers.prototype.charge)
  const reflector = {
    getAllAndOverride: () => messageOptions,
    get: (key: string, target: object) => Reflect.getMetadata(key, target),
  } as unknown as Reflector
  const interceptor = new IdemMessageInterceptor(idem, reflector)
  const deliver = (id: string, handle: CallHandler['handle']) => {
    const context = {
      getType: () => 'rpc',
      switchToRpc: () => ({ getData: () => ({ id }), getContext: () => ({}) }),
      getHandler: () => Handlers.prototype.charge,
      getClass: () => Handlers,
    } as unknown as ExecutionContext
    return lastValueFrom(interceptor.intercept(context, { handle }))
  }
  return { acked, deliver }
}

describe('IdemMessageInterceptor acks', () => {
  it('a result, and its replay to a duplicate', async () => {
    const { acked, deliver } = setup()
    let runs = 0
    const handle = () => {
      runs++
      return of({ charged: 42 })
    }
    expect(await deliver('m-1', handle)).toEqual({ charged: 42 })
    expect(await deliver('m-1', handle)).toEqual({ charged: 42 })
    expect(runs).toBe(1)
    expect(acked).toEqual(['m-1', 'm-1'])
  })

  it('an isFinal error (the decorator option) and its replay, rethrown each time', async () => {
    const { acked, deliver } = setup({ isFinal: (e) => e instanceof CardDeclined })
    let runs = 0
    const handle = () => {
      runs++
      return throwError(() => new CardDeclined('declined'))
    }
    await expect(deliver('m-2', handle)).rejects.toThrow('declined')
    await expect(deliver('m-2', handle)).rejects.toThrow('declined')
    expect(runs).toBe(1)
    expect(acked).toEqual(['m-2', 'm-2'])
  })

  it('an isFinal error of an event handler, swallowed: the transport must not deliver it again', async () => {
    const { acked, deliver } = setup({ isFinal: (e) => e instanceof CardDeclined }, undefined, 'event')
    let runs = 0
    const handle = () => {
      runs++
      return throwError(() => new CardDeclined('declined'))
    }
    expect(await deliver('e-1', handle)).toBeUndefined()
    expect(await deliver('e-1', handle)).toBeUndefined()
    expect(runs).toBe(1)
    expect(acked).toEqual(['e-1', 'e-1'])
    // An error that released the key still reaches the transport, event or not.
    await expect(deliver('e-2', () => throwError(() => new Error('timeout')))).rejects.toThrow('timeout')
    expect(acked).toEqual(['e-1', 'e-1'])
  })

  it("an error final by the Idempotency's own isFinal", async () => {
    const { acked, deliver } = setup({}, (e) => e instanceof CardDeclined)
    await expect(deliver('m-3', () => throwError(() => new CardDeclined('declined')))).rejects.toThrow('declined')
    expect(acked).toEqual(['m-3'])
  })

  it('not an error that released the key: the next delivery runs again', async () => {
    const { acked, deliver } = setup({ isFinal: () => false })
    let runs = 0
    const handle = () => (++runs === 1 ? throwError(() => new Error('network timeout')) : of('ok'))
    await expect(deliver('m-4', handle)).rejects.toThrow('network timeout')
    expect(acked).toEqual([])
    expect(await deliver('m-4', handle)).toBe('ok')
    expect(runs).toBe(2)
    expect(acked).toEqual(['m-4'])
  })

  it('not when isFinal itself throws (counted as not final)', async () => {
    const { acked, deliver } = setup({
      isFinal: () => {
        throw new Error('bug in isFinal')
      },
    })
    await expect(deliver('m-5', () => throwError(() => new Error('boom')))).rejects.toThrow('boom')
    expect(acked).toEqual([])
  })
})
