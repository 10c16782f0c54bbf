// The HTTP behavioural suite on Express 4 (installed as `express4`): the same middleware, mounted
// in an Express 4 app, whose async handlers must pass their errors to next() themselves.

import { createServer } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express4'
import express4 from 'express4'
import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { decode, type FrameworkRig, handle, listening } from '../../test/support/http/test-apps.test-helper.js'
import { MemoryStore } from '../index.js'
import { expressIdempotency } from './express/index.js'

const express4Rig: FrameworkRig = {
  name: 'Express 4',
  frameworkBodyLimit: false,
  start: (core, state) => {
    const app = express4()
    app.use(express4.json())
    // The middleware is typed against Express 5's types; at run time it is the same (req, res, next).
    app.use(expressIdempotency(core) as unknown as RequestHandler)
    app.use((req: Request, res: Response, next: NextFunction) => {
      const body = Buffer.isBuffer(req.body) ? decode(req.body, req.headers['content-type']) : req.body
      handle(state, req.path, new URLSearchParams(req.originalUrl.split('?')[1]), body)
        .then((reply) => {
          if ('throw' in reply) throw reply.throw
          if ('crash' in reply) {
            res.status(200).type('text/plain').write(reply.crash)
            throw new Error('crashed mid-response')
          }
          res
            .status(reply.status)
            .set(reply.headers)
            .send(typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body))
        })
        .catch(next)
    })
    app.use((_error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) res.socket?.destroy()
      else res.status(500).send('Internal Server Error')
    })
    return listening(createServer(app))
  },
}

describeHttpSuite('MemoryStore', async () => {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
}, [express4Rig])
