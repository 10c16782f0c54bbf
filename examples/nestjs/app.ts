// NestJS: POST /payments runs once per Idempotency-Key (@Idempotent), and the service records each
// order's payment once with idem.transaction on SQLite: the payment row and Idem's record commit
// together. Decorators are applied as calls because this repository compiles without
// experimentalDecorators; with it, write them as usual (shown in the comment above each).

import { Body, Controller, Inject, Injectable, Module, Post } from '@nestjs/common'
import Database from 'better-sqlite3'
import { Idempotency } from 'idem'
import { IdemModule, Idempotent } from 'idem/nestjs'
import { fromBetterSqlite3, SqliteStore } from 'idem/sqlite'

export const DATABASE = Symbol('database')

export interface PaymentRequest {
  orderId: string
  amountCents: number
}

export interface Payment {
  id: number
  orderId: string
  amountCents: number
}

// @Injectable()
export class PaymentsService {
  // constructor(private readonly idem: Idempotency, @Inject(DATABASE) private readonly db: Database.Database) {}
  constructor(
    private readonly idem: Idempotency,
    private readonly db: Database.Database,
  ) {}

  /** One payment per order, whatever the HTTP keys: the order id is the key of the transaction. */
  async pay(request: PaymentRequest): Promise<Payment> {
    const { value } = await this.idem.transaction(
      fromBetterSqlite3(this.db),
      { key: `order:${request.orderId}`, payload: request },
      (tx) => {
        const row = tx
          .prepare('INSERT INTO payments (order_id, amount_cents) VALUES (?, ?)')
          .run(request.orderId, request.amountCents)
        return { id: Number(row.lastInsertRowid), orderId: request.orderId, amountCents: request.amountCents }
      },
    )
    return value
  }
}
Injectable()(PaymentsService)
Inject(Idempotency)(PaymentsService, undefined, 0)
Inject(DATABASE)(PaymentsService, undefined, 1)

// @Controller('payments')
export class PaymentsController {
  constructor(private readonly payments: PaymentsService) {}

  // @Post()
  // @Idempotent({ required: true })
  create(/* @Body() */ body: PaymentRequest): Promise<Payment> {
    return this.payments.pay(body)
  }
}
Controller('payments')(PaymentsController)
Inject(PaymentsService)(PaymentsController, undefined, 0)
const create = Object.getOwnPropertyDescriptor(PaymentsController.prototype, 'create') as PropertyDescriptor
Idempotent({ required: true })(PaymentsController.prototype, 'create', create)
Post()(PaymentsController.prototype, 'create', create)
Body()(PaymentsController.prototype, 'create', 0)

/** The application's module over `db`: Idem's records and the payments live in that one database. */
export function appModule(db: Database.Database): new () => unknown {
  db.exec('CREATE TABLE IF NOT EXISTS payments (id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, amount_cents INTEGER)')

  // @Module({ providers: [{ provide: DATABASE, useValue: db }], exports: [DATABASE] })
  class DatabaseModule {}
  Module({ providers: [{ provide: DATABASE, useValue: db }], exports: [DATABASE] })(DatabaseModule)

  // @Module({ imports: [...], controllers: [PaymentsController], providers: [PaymentsService] })
  class AppModule {}
  Module({
    imports: [
      DatabaseModule,
      IdemModule.forRootAsync({
        imports: [DatabaseModule],
        inject: [DATABASE],
        useFactory: async (database: Database.Database) => {
          const store = new SqliteStore({ client: database })
          await store.ensureSchema()
          return { store, required: true }
        },
      }),
    ],
    controllers: [PaymentsController],
    providers: [PaymentsService],
  })(AppModule)
  return AppModule
}

export function openDatabase(file = ':memory:'): Database.Database {
  return new Database(file)
}
