// Fastify 5: register the plugin before the routes it covers. Run it: npx tsx examples/http/fastify.ts
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { type IdempotencyStore, MemoryStore } from 'idem'
import { fastifyIdempotency } from 'idem/fastify'
import { charge } from './payments.js'

export async function createApp(store: IdempotencyStore): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyIdempotency, { store, required: true })
  app.post<{ Body: { amount: number; currency: string } }>('/payments', async (request, reply) => {
    const payment = await charge(request.body)
    return reply.code(201).header('location', `/payments/${payment.id}`).send(payment)
  })
  return app
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const app = await createApp(new MemoryStore())
  await app.listen({ port: 3000 })
  console.log('POST http://localhost:3000/payments')
}
