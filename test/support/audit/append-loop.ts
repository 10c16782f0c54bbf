// Appends to a file audit log until it is killed: the subject of the SIGKILL test in
// src/audit/file-storage.test.ts. Large events make each append one large write(), so that a kill
// can land in the middle of it (Linux stops a write to a regular file at a page boundary when a
// fatal signal is pending) and leave a torn last line.
//
//   node --import tsx append-loop.ts <log path>    (env AUDIT_KEYS: a keyring spec; AUDIT_SIGNER_PEM: optional)

import { AuditLog } from '../../../src/audit/audit-log.js'
import { FileAuditStorage } from '../../../src/audit/file-storage.js'
import { keyringFrom, signerFromPem } from '../../../src/audit/keys.js'

const path = process.argv[2]
const keys = process.env.AUDIT_KEYS
if (path === undefined || keys === undefined) throw new Error('usage: AUDIT_KEYS=… append-loop.ts <log path>')
const pem = process.env.AUDIT_SIGNER_PEM

const log = await AuditLog.open({
  storage: new FileAuditStorage({ path, sync: 'none' }),
  keyring: keyringFrom(keys),
  ...(pem === undefined ? {} : { signer: signerFromPem('cp1', pem) }),
  checkpoint: { everyEntries: 5 },
})
const padding = 'x'.repeat(256 * 1024)
for (let round = 0; ; round++) {
  for (let i = 0; i < 8; i++) await log.record({ type: 'executed', route: 'loop', round, i, padding })
  await log.flush()
  if (round === 0) process.stdout.write('appending\n')
}
