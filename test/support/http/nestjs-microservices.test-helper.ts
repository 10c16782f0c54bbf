// A payments consumer for @IdempotentMessage() on the @nestjs/microservices transports that need
// a broker of their own (RabbitMQ, NATS, Kafka): one controller class per test file, built with its
// own patterns and its own `ack`, decorators applied as plain calls (the project compiles without
// experimentalDecorators). The state is shared by every instance of the application a file starts,
// so that a redelivery to a second instance sees what the first did.

import { Controller, Inject, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { Ctx, EventPattern, MessagePattern, type MicroserviceOptions, Payload } from '@nestjs/microservices'
import { IdemModule, IdempotentMessage } from '../../../src/http/nestjs/index.js'
import { Idempotency, type MemoryStore } from '../../../src/index.js'

export interface Charge {
  id: string
  amount: number
  /** Throw on the first execution of this id, succeed on the next. */
  fail?: boolean
}

export interface Charged {
  id: string
  fail?: boolean
  /** Throw a CardDeclinedError on every execution: a final error, stored and replayed. */
  declined?: boolean
}

/** The final error (`isFinal`) of these handlers: stored as the outcome, never retried. */
export class CardDeclinedError extends Error {
  override name = 'CardDeclinedError'
}

/** What the handlers and the `ack` option saw, across every instance of the application. */
export class PaymentsState {
  /** One entry per execution of the request handler that got past its failure. */
  charges: Charge[] = []
  /** One entry per execution of the event handler that got past its failure. */
  events: string[] = []
  /** Every execution of either handler, failures included, by id. */
  executions: string[] = []
  /** Ids whose first execution threw. */
  failed = new Set<string>()
  /** The `ack` option's calls, by id: once per delivery settled, duplicates included. */
  acked: string[] = []
  /** The transport context's class name, per execution. */
  contexts: string[] = []

  count(list: 'charges' | 'events' | 'executions' | 'acked', id: string): number {
    const values = list === 'charges' ? this.charges.map((c) => c.id) : this[list]
    return values.filter((value) => value === id).length
  }
}

export interface PaymentsPatterns<C> {
  /** The @MessagePattern's pattern (omit it for a transport tested on events only). */
  charge?: string
  /** The @EventPattern's pattern. */
  charged: string
  /** The transport's manual ack, called by `@IdempotentMessage({ ack })`; the state records it. */
  ack?: (context: C) => void
  /** Called with the context of every execution, e.g. to record a redelivered flag. */
  observe?: (context: C, id: string) => void
}

export type PaymentsControllerClass = new (state: PaymentsState) => object

/**
 * A controller class whose handlers run under `@IdempotentMessage()` with `patterns`; its `ack`
 * records into `state`, the state every instance of the application is given.
 */
export function paymentsController<C extends object>(
  state: PaymentsState,
  patterns: PaymentsPatterns<C>,
): PaymentsControllerClass {
  class PaymentsController {
    constructor(readonly state: PaymentsState) {}

    charge(data: Charge, context: C) {
      this.#execute(data, context)
      this.state.charges.push(data)
      return { chargeId: `ch_${this.state.charges.length}`, amount: data.amount }
    }

    charged(data: Charged, context: C) {
      this.#execute(data, context)
      this.state.events.push(data.id)
    }

    #execute(data: { id: string; fail?: boolean; declined?: boolean }, context: C): void {
      this.state.executions.push(data.id)
      this.state.contexts.push(context.constructor.name)
      patterns.observe?.(context, data.id)
      if (data.declined === true) throw new CardDeclinedError('the card was declined')
      if (data.fail === true && !this.state.failed.has(data.id)) {
        this.state.failed.add(data.id)
        throw new Error('the card network timed out')
      }
    }
  }
  const decorate = (name: 'charge' | 'charged', ...decorators: MethodDecorator[]) => {
    const descriptor = Object.getOwnPropertyDescriptor(PaymentsController.prototype, name) as PropertyDescriptor
    for (const decorator of decorators.reverse()) decorator(PaymentsController.prototype, name, descriptor)
    Payload()(PaymentsController.prototype, name, 0)
    Ctx()(PaymentsController.prototype, name, 1)
  }
  Controller()(PaymentsController)
  Inject(PaymentsState)(PaymentsController, undefined, 0)
  const options = {
    key: (data: { id: string }) => data.id,
    isFinal: (error: unknown) => error instanceof CardDeclinedError,
    ack: (context: C, data: { id: string }) => {
      patterns.ack?.(context)
      state.acked.push(data.id)
    },
  }
  if (patterns.charge !== undefined) {
    decorate('charge', MessagePattern(patterns.charge) as MethodDecorator, IdempotentMessage<Charge, C>(options))
  }
  decorate('charged', EventPattern(patterns.charged) as MethodDecorator, IdempotentMessage<Charged, C>(options))
  return PaymentsController
}

export type Microservice = Awaited<ReturnType<typeof NestFactory.createMicroservice>>

/** Start an instance of the consumer on `transport`, over `store` and `state`. */
export async function startConsumer(
  controller: PaymentsControllerClass,
  state: PaymentsState,
  store: MemoryStore,
  transport: MicroserviceOptions,
): Promise<{ app: Microservice; idem: Idempotency }> {
  class PaymentsModule {}
  Module({
    imports: [IdemModule.forRoot({ store })],
    controllers: [controller],
    providers: [{ provide: PaymentsState, useValue: state }],
  })(PaymentsModule)
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(PaymentsModule, {
    ...transport,
    logger: false,
    abortOnError: false,
  })
  await app.listen()
  return { app, idem: app.get(Idempotency) }
}

/** Poll `condition` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
