// `idem audit`: check an audit log (docs/audit.md), read it back, and make keys for it.
//
//   idem audit verify (--file PATH | --postgres URL [--table T]) [--keys SPEC] [--public-key ID=PEM_OR_PATH …] [--expect SEQ:HASH | --expect-file PATH]
//   idem audit show   (--file PATH | --postgres URL [--table T]) --keys SPEC [--route R] [--key K] [--type T] [--since ISO] [--until ISO] [--json]
//   idem audit keygen
//
// Exit codes: 0 the log holds (verify) or was printed whole (show); 1 it does not hold; 2 bad
// arguments (a UsageError, which the bin turns into the usage and exit code 2).

import { existsSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { openEntry } from '../audit/seal.js'
import type {
  AuditEntry,
  AuditEvent,
  AuditKeyring,
  AuditStorage,
  AuditVerification,
  CheckpointVerifier,
} from '../audit/types.js'

/** Bad arguments (the same class main.ts throws): the bin prints the message and the usage, and exits 2. */
export class AuditUsageError extends Error {}

export const AUDIT_USAGE = `  idem audit verify (--file PATH | --postgres URL [--table T]) [--keys SPEC] [--public-key ID=PEM_OR_PATH ...]
                    [--expect SEQ:HASH | --expect-file PATH]
                                         check the log: chain, MACs (with --keys), checkpoint signatures
  idem audit show (--file PATH | --postgres URL [--table T]) --keys SPEC [--route R] [--key K] [--type T]
                  [--since ISO] [--until ISO] [--public-key ID=PEM_OR_PATH ...] [--json]
                                         decrypt and print the entries that match
  idem audit keygen                      a new encryption key and an Ed25519 signing key pair`

type Item = AuditEntry | { torn: string; position: number }

export async function auditCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv
  switch (sub) {
    case 'verify':
      return verifyCommand(rest, env)
    case 'show':
      return showCommand(rest, env)
    case 'keygen':
      return keygenCommand(rest)
    case undefined:
      throw new AuditUsageError('idem audit needs a command: verify, show or keygen')
    default:
      throw new AuditUsageError(`Unknown audit command "${sub}" (verify, show or keygen)`)
  }
}

const SOURCE_OPTIONS = {
  file: { type: 'string' },
  postgres: { type: 'string' },
  table: { type: 'string' },
  keys: { type: 'string' },
} as const

/** parseArgs' errors (an unknown option, a missing value) as usage errors. */
function parsing<T>(command: string, parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    throw new AuditUsageError(`idem audit ${command}: ${(error as Error).message}`)
  }
}

// ---------------------------------------------------------------------------------------------
// verify

async function verifyCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parsing('verify', () =>
    parseArgs({
      args: [...argv],
      options: {
        ...SOURCE_OPTIONS,
        'public-key': { type: 'string', multiple: true },
        expect: { type: 'string' },
        'expect-file': { type: 'string' },
      },
    }),
  )
  const source = sourceOf('verify', values)
  const keyring = await keyringOf('verify', values.keys ?? env.IDEM_AUDIT_KEYS, false)
  const verifier = await verifierOf(values['public-key'])
  if (values.expect !== undefined && values['expect-file'] !== undefined) {
    throw new AuditUsageError('give --expect or --expect-file, not both')
  }
  const expected =
    values['expect-file'] === undefined ? expectedOf(values.expect) : expectedFromFile(values['expect-file'])
  const { verifyAuditLog } = await import('../audit/verify.js')
  const items = await readAll(source)
  if (verifier === undefined) {
    // A signature cannot be checked without its public key: that is a missing argument, not a bad log.
    const signers = new Set(
      items.flatMap((item) => ('torn' in item || item.kind !== 'checkpoint' ? [] : [item.signer])),
    )
    if (signers.size > 0) {
      throw new AuditUsageError(
        `the log has checkpoints signed by ${[...signers].join(', ')}: give their public keys, --public-key ${[...signers][0]}=PEM_OR_PATH`,
      )
    }
  }
  const result = await verifyAuditLog(items, {
    ...(keyring === undefined ? {} : { keyring }),
    ...(verifier === undefined ? {} : { verifier }),
    ...(expected === undefined ? {} : { expected }),
  })
  for (const line of summary(source.label, result, items, { keyring, verifier, expected })) console.log(line)
  return result.ok ? 0 : 1
}

function summary(
  label: string,
  result: AuditVerification,
  items: readonly Item[],
  given: { keyring: unknown; verifier: unknown; expected: { upTo: number; head: string } | undefined },
): string[] {
  const last = lastEntry(items)
  const lines = [
    `audit log ${label}`,
    `  entries: ${result.entries}, checkpoints: ${result.checkpoints}${last === undefined ? '' : `, last seq ${last.seq} (hash ${last.hash})`}`,
    `  signed up to: ${result.signedUpTo === 0 ? 'none (no valid checkpoint)' : `seq ${result.signedUpTo}`}`,
    `  unsigned: ${result.unsigned} ${result.unsigned === 1 ? 'entry' : 'entries'} after the last checkpoint (chained, not covered by a signature)`,
    `  torn tail: ${result.tornTail === undefined ? 'none' : `at ${result.tornTail.position} (an incomplete last line or row: a crash mid-append; not accepted)`}`,
    given.keyring === undefined
      ? '  MACs: NOT checked (no --keys or IDEM_AUDIT_KEYS): the chain and the signatures were; the bodies were not authenticated'
      : '  MACs: checked (every body authenticated and decrypted)',
    given.verifier === undefined
      ? '  signatures: NOT checked (no --public-key): checkpoints are only checked as links of the chain'
      : '  signatures: checked',
  ]
  if (given.expected !== undefined)
    lines.push(`  expected: seq ${given.expected.upTo} hashes to ${given.expected.head}`)
  if (result.firstBad !== undefined) {
    const where = result.firstBad.seq === undefined ? `at ${result.firstBad.position}` : `seq ${result.firstBad.seq}`
    lines.push(
      `FAILED: the first entry that does not hold is ${where} (position ${result.firstBad.position}): ${result.firstBad.reason}`,
    )
  } else if (!result.ok) {
    lines.push('FAILED: the log does not hold')
  } else {
    lines.push('OK: every entry holds')
  }
  return lines
}

// ---------------------------------------------------------------------------------------------
// show

async function showCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parsing('show', () =>
    parseArgs({
      args: [...argv],
      options: {
        ...SOURCE_OPTIONS,
        route: { type: 'string' },
        key: { type: 'string' },
        type: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        json: { type: 'boolean' },
        'public-key': { type: 'string', multiple: true },
      },
    }),
  )
  const source = sourceOf('show', values)
  const keyring = await keyringOf('show', values.keys ?? env.IDEM_AUDIT_KEYS, true)
  const verifier = await verifierOf(values['public-key'])
  const since = timeOf('--since', values.since)
  const until = timeOf('--until', values.until)
  const items = await readAll(source)
  // Checked as a whole first: nothing at or after the first entry that does not hold is printed.
  // With public keys, everything `verify` checks; without, the chain and the MACs (checkpoints
  // are then links of the chain whose signatures are not checked).
  const { verifyAuditLog } = await import('../audit/verify.js')
  const result = await verifyAuditLog(items, {
    keyring,
    ...(verifier === undefined ? { signatures: false } : { verifier }),
  })
  const stop = result.firstBad?.position
  let shown = 0
  for (const [index, item] of items.entries()) {
    // Positions are 1-based ordinals (a torn item's is the one storage reported, and it is last).
    if (stop !== undefined && index + 1 >= stop) break
    if ('torn' in item || item.kind !== 'entry') continue
    const time = Date.parse(item.time)
    if ((since !== undefined && time < since) || (until !== undefined && time > until)) continue
    const event = openEntry(item, keyring)
    if (values.route !== undefined && event.route !== values.route) continue
    if (values.key !== undefined && event.key !== values.key) continue
    if (values.type !== undefined && event.type !== values.type) continue
    console.log(values.json === true ? JSON.stringify({ seq: item.seq, time: item.time, ...event }) : line(item, event))
    shown++
  }
  if (result.firstBad !== undefined) {
    const where = result.firstBad.seq === undefined ? `at ${result.firstBad.position}` : `seq ${result.firstBad.seq}`
    console.error(
      `STOPPED: the entry ${where} does not hold (${result.firstBad.reason}); nothing from it on is shown. Run idem audit verify.`,
    )
    return 1
  }
  if (values.json !== true) {
    const torn = result.tornTail === undefined ? '' : '; the last line is torn (not shown)'
    console.error(`${shown} matching ${shown === 1 ? 'entry' : 'entries'} of ${result.entries}${torn}`)
  }
  return 0
}

/** `12 2026-12-06T22:31:24.123Z executed route=payments key=… code=… status=201 method=POST mode=enforce` */
function line(entry: { seq: number; time: string }, event: AuditEvent): string {
  const { type, route, key, code, status, ...rest } = event
  const fields = Object.entries({ route, key, code, status, ...rest })
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  return [String(entry.seq), entry.time, type, ...fields].join(' ')
}

function timeOf(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const time = Date.parse(text)
  if (Number.isNaN(time)) throw new AuditUsageError(`${option} must be an ISO 8601 time such as 2026-12-06T22:00:00Z`)
  return time
}

// ---------------------------------------------------------------------------------------------
// keygen

async function keygenCommand(argv: readonly string[]): Promise<number> {
  parsing('keygen', () => parseArgs({ args: [...argv], options: {} }))
  const { generateAuditKey, generateSigningKeyPair } = await import('../audit/keys.js')
  const key = generateAuditKey()
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair()
  console.log(
    [
      '# Encryption key, 32 bytes (AES-256-GCM or SM4-CTR + HMAC-SM3), for audit.keys: keep it in a secret',
      '# store and the environment, never in the config file or the log. To rotate, append k2:<new key>.',
      `IDEM_AUDIT_KEYS=k1:${key}`,
      '',
      '# Checkpoint signing key (Ed25519), private: for audit.signingKey.privateKey (this PEM, or a file',
      '# holding it, readable by the gateway only).',
      privateKeyPem.trimEnd(),
      '',
      '# Its public key: all a verifier needs, idem audit verify --public-key s1=public.pem',
      publicKeyPem.trimEnd(),
    ].join('\n'),
  )
  return 0
}

// ---------------------------------------------------------------------------------------------
// Arguments shared by the commands

interface Source {
  label: string
  open(): Promise<AuditStorage>
}

function sourceOf(
  command: string,
  values: { file?: string | undefined; postgres?: string | undefined; table?: string | undefined },
): Source {
  const { file, postgres, table } = values
  if ((file === undefined) === (postgres === undefined)) {
    throw new AuditUsageError(`idem audit ${command} needs exactly one of --file PATH or --postgres URL`)
  }
  if (table !== undefined && postgres === undefined) throw new AuditUsageError('--table goes with --postgres')
  if (file !== undefined) {
    if (!existsSync(file)) throw new AuditUsageError(`No audit log at ${file}`)
    return {
      label: file,
      async open() {
        const { FileAuditStorage } = await import('../audit/file-storage.js')
        // Only read (read() never changes the file): no sync policy matters.
        return new FileAuditStorage({ path: file, sync: 'none' })
      },
    }
  }
  const url = postgres as string
  if (!/^postgres(ql)?:\/\//.test(url)) throw new AuditUsageError('--postgres must be a postgres:// URL')
  return {
    label: `${redactUrl(url)} table ${table ?? '(default)'}`,
    async open() {
      const { default: pg } = await import('pg')
      const { PostgresAuditStorage } = await import('../audit/postgres-storage.js')
      const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 5_000, max: 1 })
      pool.on('error', () => {})
      const storage = new PostgresAuditStorage({ client: pool, ...(table === undefined ? {} : { table }) })
      return {
        last: () => storage.last(),
        append: (entries) => storage.append(entries),
        read: () => storage.read(),
        async close() {
          await storage.close()
          await pool.end()
        },
      }
    },
  }
}

async function readAll(source: Source): Promise<Item[]> {
  const storage = await source.open()
  try {
    const items: Item[] = []
    for await (const item of storage.read()) items.push(item)
    return items
  } finally {
    await storage.close()
  }
}

async function keyringOf(command: string, spec: string | undefined, required: true): Promise<AuditKeyring>
async function keyringOf(command: string, spec: string | undefined, required: false): Promise<AuditKeyring | undefined>
async function keyringOf(command: string, spec: string | undefined, required: boolean) {
  if (spec === undefined || spec === '') {
    if (required) throw new AuditUsageError(`idem audit ${command} needs the keys: --keys SPEC or IDEM_AUDIT_KEYS`)
    return undefined
  }
  const { keyringFrom } = await import('../audit/keys.js')
  try {
    return keyringFrom(spec)
  } catch (error) {
    throw new AuditUsageError(`--keys: ${(error as Error).message}`)
  }
}

async function verifierOf(specs: readonly string[] | undefined): Promise<CheckpointVerifier | undefined> {
  if (specs === undefined || specs.length === 0) return undefined
  const pairs = specs.map((spec): [string, string] => {
    const at = spec.indexOf('=')
    if (at <= 0 || at === spec.length - 1) throw new AuditUsageError(`--public-key ${spec}: write ID=PEM_OR_PATH`)
    return [spec.slice(0, at), spec.slice(at + 1)]
  })
  const { verifierFromPems } = await import('../audit/keys.js')
  try {
    return verifierFromPems(pairs)
  } catch (error) {
    throw new AuditUsageError(`--public-key: ${(error as Error).message}`)
  }
}

function expectedOf(text: string | undefined): { upTo: number; head: string } | undefined {
  if (text === undefined) return undefined
  const match = /^(\d+):([0-9a-f]{64})$/.exec(text)
  if (match === null)
    throw new AuditUsageError('--expect must be SEQ:HASH (a sequence number and its 64-digit hex hash)')
  return { upTo: Number(match[1]), head: match[2] as string }
}

/**
 * The checkpoint kept elsewhere: the last line of a file the gateway appends each checkpoint to
 * (audit.checkpoint.file), `{ upTo, head, sig, signer, time }`. A last line cut short by a crash
 * is passed over for the one before it.
 */
function expectedFromFile(path: string): { upTo: number; head: string } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new AuditUsageError(`--expect-file ${path}: ${(error as Error).message}`)
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '')
  for (let i = lines.length - 1; i >= 0; i--) {
    let parsed: unknown
    try {
      parsed = JSON.parse(lines[i] as string)
    } catch {
      if (i === lines.length - 1) continue // a torn last line: take the one before
      break
    }
    const { upTo, head } = (parsed ?? {}) as { upTo?: unknown; head?: unknown }
    if (
      Number.isSafeInteger(upTo) &&
      (upTo as number) >= 0 &&
      typeof head === 'string' &&
      /^[0-9a-f]{64}$/.test(head)
    ) {
      return { upTo: upTo as number, head }
    }
    break
  }
  throw new AuditUsageError(`--expect-file ${path}: its last line is not a checkpoint ({"upTo":SEQ,"head":HASH,…})`)
}

function lastEntry(items: readonly Item[]): AuditEntry | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as Item
    if (!('torn' in item)) return item
  }
  return undefined
}

function redactUrl(text: string): string {
  try {
    const url = new URL(text)
    if (url.password !== '') url.password = 'redacted'
    return url.toString()
  } catch {
    return 'postgres://…'
  }
}
