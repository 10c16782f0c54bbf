// Runs the NestJS example: a payment, its retry with the same Idempotency-Key (replayed), and a
// new key for the same order (the transaction replays the payment). Run it:
//   npx tsx examples/nestjs/main.ts            the demo, then exits
//   npx tsx examples/nestjs/main.ts --serve    listens on http://localhost:3000/payments

import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { NestFactory } from '@nestjs/core'
import { appModule, openDatabase } from './app.js'

export async function demo(): Promise<Array<{ status: number; replayed: boolean; body: unknown }>> {
  const db = openDatabase()
  const app = await NestFactory.create(appModule(db), { logger: false })
  await app.listen(0, '127.0.0.1')
  const { port } = app.getHttpServer().address() as AddressInfo
  const post = async (key: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ orderId: 'order-42', amountCents: 4200 }),
    })
    return {
      status: response.status,
      replayed: response.headers.get('idempotent-replayed') === 'true',
      body: await response.json(),
    }
  }
  try {
    return [await post('key-1'), await post('key-1'), await post('key-2')]
  } finally {
    await app.close()
    db.close()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--serve')) {
    const app = await NestFactory.create(appModule(openDatabase()))
    await app.listen(3000)
    console.log('POST http://localhost:3000/payments')
  } else {
    for (const answer of await demo()) console.log(JSON.stringify(answer))
  }
}
