// @IdempotentMessage(): @MessagePattern/@EventPattern handlers of @nestjs/microservices run once
// per message id. The handler runs inside `idem.run`, so a duplicate (a redelivery, a producer's
// retry) gets the stored result instead of a second execution. Nest's transport still owns the
// delivery and its acknowledgement: see docs/nestjs.md for what that means per transport.

import {
  applyDecorators,
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  SetMetadata,
  UseInterceptors,
} from '@nestjs/common'
import { Reflector } from '@nestjs/core'
import { lastValueFrom, type Observable, from as observe, of, throwError } from 'rxjs'
import { catchError, map } from 'rxjs/operators'
import { Idempotency } from '../../core/idempotency.js'
import type { PolicyOptions } from '../../core/options.js'
import { IDEMPOTENT_MESSAGE_METADATA } from './tokens.js'

/**
 * Where @nestjs/microservices records a handler's type (its PATTERN_HANDLER_METADATA), and the
 * value of @EventPattern (PatternHandler.EVENT): read here without loading the package.
 */
const PATTERN_HANDLER_METADATA = 'microservices:handler_type'
const EVENT_HANDLER = 2

/** What `@IdempotentMessage()` takes. `T` is the message's data, `C` the transport's context (`RmqContext`, `NatsContext`…). */
export interface IdempotentMessageOptions<T = unknown, C = unknown>
  extends Pick<
    PolicyOptions,
    'ttl' | 'lease' | 'onInProgress' | 'waitTimeout' | 'fingerprintFields' | 'failOpen' | 'isFinal'
  > {
  /**
   * The message's id: the key it runs once under. The producer's id for the operation (not a
   * transport delivery id, which changes on a republish). Undefined runs the handler unprotected.
   */
  key: (data: T, context: C) => string | undefined
  /** Namespace of the keys. Default `nest:<Controller>.<method>`: one per handler. */
  scope?: string
  /**
   * Called once the outcome is settled (stored, or replayed to a duplicate), e.g. to ack an RMQ
   * message with `noAck: false`: `ack: (ctx) => ctx.getChannelRef().ack(ctx.getMessage())`. Ack
   * here, not in the handler: a duplicate does not run the handler but must be acked too. A
   * stored error is settled too: an `isFinal` error the handler threw, and its replay to every
   * duplicate, are acked (then rethrown to a request's requester, swallowed for an event); an
   * error that released the key is not.
   */
  ack?: (context: C, data: T) => void
}

/**
 * Run a message handler once per message id; duplicates get the stored result (a
 * `@MessagePattern` reply is replayed to the duplicate's requester). The result is stored as JSON
 * (the last value when the handler returns an Observable). A handler that throws releases the
 * key: the next delivery runs again. A duplicate that arrives while the first runs waits for its
 * outcome by default (`onInProgress: 'wait'`).
 *
 * @example
 * ```ts
 * @EventPattern('payments.charge')
 * @IdempotentMessage({ key: (data: Charge) => data.id })
 * charge(@Payload() data: Charge) { ... }
 * ```
 */
export function IdempotentMessage<T = unknown, C = unknown>(
  options: IdempotentMessageOptions<T, C>,
): MethodDecorator & ClassDecorator {
  return applyDecorators(SetMetadata(IDEMPOTENT_MESSAGE_METADATA, options), UseInterceptors(IdemMessageInterceptor))
}

/** The interceptor behind `@IdempotentMessage()`; on anything but a microservice handler it does nothing. */
export class IdemMessageInterceptor implements NestInterceptor {
  readonly #idem: Idempotency
  readonly #reflector: Reflector

  constructor(idem: Idempotency, reflector: Reflector) {
    this.#idem = idem
    this.#reflector = reflector
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'rpc') return next.handle()
    const options = this.#reflector.getAllAndOverride<IdempotentMessageOptions | undefined>(
      IDEMPOTENT_MESSAGE_METADATA,
      [context.getHandler(), context.getClass()],
    )
    if (options === undefined) return next.handle()
    const rpc = context.switchToRpc()
    const data: unknown = rpc.getData()
    const transport: unknown = rpc.getContext()
    const key = options.key(data, transport)
    if (key === undefined) return next.handle()
    const { key: _key, ack, scope, ...policy } = options
    const run = this.#idem.run(
      {
        onInProgress: 'wait',
        ...policy,
        key,
        scope: scope ?? `nest:${context.getClass().name}.${context.getHandler().name}`,
        payload: data,
      },
      // Whatever the handler emits last is its result (a reply, or nothing for an event).
      () => lastValueFrom(next.handle(), { defaultValue: undefined }),
    )
    return observe(run).pipe(
      map((result) => {
        ack?.(transport, data)
        return result.value
      }),
      catchError((error: unknown) => {
        if (!this.#stored(error, policy.isFinal)) return throwError(() => error)
        // A stored error is an outcome: left unacked, the transport would hold (RabbitMQ) or
        // redeliver (a Kafka partition) a message whose every delivery throws the same error.
        ack?.(transport, data)
        // An event has no requester to tell: rethrown, the transport would take it for a failure
        // and deliver it again (kafkajs fetches the offset again, forever). A request's error
        // goes back to its requester.
        return this.#isEvent(context) ? of(undefined) : throwError(() => error)
      }),
    )
  }

  /** True for an @EventPattern handler (no reply), by the handler type @nestjs/microservices records on it. */
  #isEvent(context: ExecutionContext): boolean {
    return this.#reflector.get<number | undefined>(PATTERN_HANDLER_METADATA, context.getHandler()) === EVENT_HANDLER
  }

  /** True when `error` is an outcome the store keeps: replayed from it, or `isFinal` and so just stored. */
  #stored(error: unknown, isFinal: ((error: unknown) => boolean) | undefined): boolean {
    if ((error as { replayed?: unknown } | null)?.replayed === true) return true
    try {
      return isFinal === undefined ? this.#idem.isFinal(error) : isFinal(error) === true
    } catch {
      // A throwing isFinal counts as not final, as in run().
      return false
    }
  }
}

Injectable()(IdemMessageInterceptor)
Inject(Idempotency)(IdemMessageInterceptor, undefined, 0)
Inject(Reflector)(IdemMessageInterceptor, undefined, 1)
