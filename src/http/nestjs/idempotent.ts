// @Idempotent(): marks a route (or every route of a controller) for the HTTP interceptor, with
// its own options over the module's. Built from SetMetadata and UseInterceptors, so that it works
// with decorator syntax and as a plain call alike.

import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common'
import { IdempotencyInterceptor } from './idempotency-interceptor.js'
import type { IdempotentOptions } from './options.js'
import { IDEMPOTENT_METADATA } from './tokens.js'

/**
 * Make a route honour `Idempotency-Key`, or every route of a controller when applied to the
 * class. `options` override the module's for these routes; on a route (not a class) without
 * `methods`, the route's own method is covered, whatever it is. `@Idempotent(false)` exempts a
 * route when the interceptor applies to every route (`allRoutes`) or to its controller.
 *
 * @example
 * ```ts
 * @Controller('payments')
 * export class PaymentsController {
 *   @Post()
 *   @Idempotent({ required: true, ttl: '7d', fingerprintFields: ['amount', 'currency'] })
 *   create(@Body() body: CreatePayment) { ... }
 * }
 * // Without decorator syntax: Idempotent({ required: true })(PaymentsController.prototype, 'create', descriptor)
 * ```
 */
export function Idempotent(options: IdempotentOptions | false = {}): MethodDecorator & ClassDecorator {
  // An exemption needs no interceptor of its own: it is only read by one that applies anyway.
  if (options === false) return SetMetadata(IDEMPOTENT_METADATA, false)
  return applyDecorators(SetMetadata(IDEMPOTENT_METADATA, options), UseInterceptors(IdempotencyInterceptor))
}
