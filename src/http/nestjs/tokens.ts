// Injection tokens of idem/nestjs. The classes `Idempotency` and `HttpIdempotency` are tokens too
// (with emitDecoratorMetadata a constructor parameter typed with them is injected without @Inject);
// these symbols are for code that prefers explicit tokens.

/** The `Idempotency` of the module: `run()` and `transaction()` in your services. */
export const IDEM = Symbol.for('idem:nestjs:Idempotency')
/** The `HttpIdempotency` every route shares (one store, one set of events). */
export const IDEM_HTTP = Symbol.for('idem:nestjs:HttpIdempotency')
/** The options the module was registered with (forRoot's, or what forRootAsync's factory returned). */
export const IDEM_MODULE_OPTIONS = Symbol.for('idem:nestjs:options')
/** Metadata key of `@Idempotent()`. */
export const IDEMPOTENT_METADATA = 'idem:nestjs:idempotent'
/** Metadata key of `@IdempotentMessage()`. */
export const IDEMPOTENT_MESSAGE_METADATA = 'idem:nestjs:idempotent-message'
