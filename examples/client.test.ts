// The client example runs as written, and docs/client.md shows it as it is.

import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MemoryStore } from 'idem'
import { expect, it } from 'vitest'
import { startDropProxy } from '../test/support/client/servers.test-helper.js'
import { pay } from './client.js'
import { createApp } from './http/express.js'
import { chargeCount } from './http/payments.js'

it('pays once although the first answer is lost on the way back', async () => {
  const server = createServer(createApp(new MemoryStore()))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy = await startDropProxy(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  try {
    const before = chargeCount()
    proxy.dropNext = 1
    const paid = await pay(proxy.url, 42, 'EUR')
    expect(proxy.dropped).toBe(1)
    expect(paid).toMatchObject({ payment: { amount: 42, currency: 'EUR' }, attempts: 2, replayed: true })
    expect(chargeCount()).toBe(before + 1)
    const next = await pay(proxy.url, 7, 'EUR')
    expect(next).toMatchObject({ attempts: 1, replayed: false })
    expect(next.key).not.toBe(paid.key)
    expect(chargeCount()).toBe(before + 2)
  } finally {
    await proxy.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

it('docs/client.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../docs/client.md', import.meta.url), 'utf8')
  const shown = [...doc.matchAll(/<!-- example: (examples\/[\w./-]+) -->\n```ts\n([\s\S]*?)```/g)]
  expect(shown.map(([, path]) => path)).toEqual(['examples/client.ts'])
  for (const [, path, code] of shown) {
    expect(code, path).toBe(readFileSync(new URL(`../${path}`, import.meta.url), 'utf8'))
  }
})
