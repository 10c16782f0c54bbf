// IdemModule: the HTTP core, the Idempotency and the interceptors as Nest providers. A dynamic
// module built without decorator syntax (the library compiles without experimentalDecorators):
// forRoot/forRootAsync return its whole metadata.

import type { DynamicModule, InjectionToken, ModuleMetadata, OptionalFactoryDependency, Provider } from '@nestjs/common'
import { APP_INTERCEPTOR } from '@nestjs/core'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../core/http-idempotency.js'
import { IdempotencyInterceptor, withContext } from './idempotency-interceptor.js'
import { IdemMessageInterceptor } from './message-interceptor.js'
import type { IdemModuleConfig, IdemModuleOptions, IdemModuleRegistration } from './options.js'
import { IDEM, IDEM_HTTP, IDEM_MODULE_OPTIONS } from './tokens.js'

/** forRootAsync's options: a factory of the module's options, with what it injects. */
export interface IdemModuleAsyncOptions extends IdemModuleRegistration, Pick<ModuleMetadata, 'imports'> {
  /** The options, or an `HttpIdempotency` shared with other adapters. */
  useFactory: (...args: never[]) => IdemModuleConfig | Promise<IdemModuleConfig>
  inject?: Array<InjectionToken | OptionalFactoryDependency>
}

/**
 * Idem for NestJS. Provides `Idempotency` (also under `IDEM`) for `run()` and `transaction()` in
 * your services, `HttpIdempotency` (also `IDEM_HTTP`) shared by every route, and the interceptors
 * behind `@Idempotent()` and `@IdempotentMessage()`. The store stays yours: the module closes
 * nothing; close it at shutdown (e.g. in `onApplicationShutdown` of the provider that made it).
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     IdemModule.forRootAsync({
 *       isGlobal: true,
 *       inject: [ConfigService],
 *       useFactory: (config: ConfigService) => ({ store: new RedisStore({ client: new Redis(config.get('REDIS_URL')) }), required: true }),
 *     }),
 *   ],
 *   controllers: [PaymentsController],
 * })
 * export class AppModule {}
 * ```
 */
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest module is a class (the token Nest registers); forRoot on it is Nest's convention
export class IdemModule {
  /**
   * The module over the options given: `{ store }` or `{ idem }`, and the HTTP options; or over an
   * `HttpIdempotency` shared with other adapters (then `registration` says how it is registered).
   */
  static forRoot(
    options: (IdemModuleOptions & IdemModuleRegistration) | HttpIdempotency,
    registration: IdemModuleRegistration = {},
  ): DynamicModule {
    if (options instanceof HttpIdempotency) {
      return IdemModule.#module(registration, [], { provide: IDEM_MODULE_OPTIONS, useValue: options })
    }
    const { isGlobal = registration.isGlobal, allRoutes = registration.allRoutes, ...idem } = options
    return IdemModule.#module({ isGlobal, allRoutes }, [], { provide: IDEM_MODULE_OPTIONS, useValue: idem })
  }

  /** The module over options a factory makes, from what it injects (a config service, a database). */
  static forRootAsync(options: IdemModuleAsyncOptions): DynamicModule {
    const { isGlobal, allRoutes, imports = [], useFactory, inject = [] } = options
    return IdemModule.#module({ isGlobal, allRoutes }, imports, { provide: IDEM_MODULE_OPTIONS, useFactory, inject })
  }

  static #module(
    registration: IdemModuleRegistration,
    imports: NonNullable<ModuleMetadata['imports']>,
    options: Provider,
  ): DynamicModule {
    const providers: Provider[] = [
      options,
      {
        provide: HttpIdempotency,
        useFactory: (o: IdemModuleConfig) => (o instanceof HttpIdempotency ? o : new HttpIdempotency(httpOptions(o))),
        inject: [IDEM_MODULE_OPTIONS],
      },
      { provide: IDEM_HTTP, useExisting: HttpIdempotency },
      { provide: Idempotency, useFactory: (http: HttpIdempotency) => http.idem, inject: [HttpIdempotency] },
      { provide: IDEM, useExisting: Idempotency },
      IdempotencyInterceptor,
      IdemMessageInterceptor,
    ]
    if (registration.allRoutes === true)
      providers.push({ provide: APP_INTERCEPTOR, useExisting: IdempotencyInterceptor })
    return {
      module: IdemModule,
      global: registration.isGlobal === true,
      imports,
      providers,
      exports: [
        IDEM_MODULE_OPTIONS,
        HttpIdempotency,
        IDEM_HTTP,
        Idempotency,
        IDEM,
        IdempotencyInterceptor,
        IdemMessageInterceptor,
      ],
    }
  }
}

/** The core's options from the module's: the principal also gets Nest's context. */
function httpOptions(options: IdemModuleOptions): ConstructorParameters<typeof HttpIdempotency>[0] {
  const { principal, ...rest } = options
  return principal === undefined ? rest : { ...rest, principal: withContext(principal) }
}
