// idem/nestjs: IdemModule, @Idempotent() for HTTP routes (Express and Fastify platforms) and
// @IdempotentMessage() for @nestjs/microservices handlers. NestJS itself is the application's.

export { type HttpAdapterOptions, HttpIdempotency, type HttpIdempotencyOptions } from '../index.js'
export { IdemModule, type IdemModuleAsyncOptions } from './idem-module.js'
export { IdempotencyInterceptor } from './idempotency-interceptor.js'
export { Idempotent } from './idempotent.js'
export { IdemMessageInterceptor, IdempotentMessage, type IdempotentMessageOptions } from './message-interceptor.js'
export type {
  IdemModuleConfig,
  IdemModuleOptions,
  IdemModuleRegistration,
  IdempotentOptions,
  NestPrincipal,
} from './options.js'
export { IDEM, IDEM_HTTP, IDEM_MODULE_OPTIONS, IDEMPOTENT_MESSAGE_METADATA, IDEMPOTENT_METADATA } from './tokens.js'
