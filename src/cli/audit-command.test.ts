// `idem audit`: verify a log written by AuditLog (ok, tampered, a cut tail, a torn line), show
// its entries with filters (and nothing after an entry that does not hold), keygen, and the
// usage errors. main() runs in this process with its printed lines captured; the exit code 2 of
// a usage error is also checked on the real executable.

import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runIdem, runIdemBin } from '../../test/support/cli/idem-cli.test-helper.js'
import { AuditLog } from '../audit/audit-log.js'
import { FileAuditStorage } from '../audit/file-storage.js'
import { generateAuditKey, generateSigningKeyPair, keyringFrom, signerFromPem } from '../audit/keys.js'
import { UsageError } from './main.js'

/** `idem` in this process, its output as one text. */
const idem = async (...argv: string[]) => {
  const { code, out, err } = await runIdem(...argv)
  return { code, out: out.join('\n'), err }
}

let dir: string
let keys: string
let publicKey: string
const T0 = Date.parse('2026-01-01T10:00:00.000Z')

/** A log of 6 events with a checkpoint every 4 entries and a final one: seq 1-4, cp 5, 6-7, cp 8. */
async function writeLog(name: string): Promise<string> {
  const path = join(dir, name)
  const { privateKeyPem } = pair
  let tick = 0
  const log = await AuditLog.open({
    storage: new FileAuditStorage({ path, sync: 'none' }),
    keyring: keyringFrom(keys),
    signer: signerFromPem('s1', privateKeyPem),
    checkpoint: { everyEntries: 4 },
    // One minute per event, from T0: --since and --until have something to cut.
    clock: () => new Date(T0 + 60_000 * tick++),
  })
  const events = [
    { type: 'executed', route: 'payments', key: 'pay-1', method: 'POST', status: 201 },
    { type: 'replayed', route: 'payments', key: 'pay-1', method: 'POST', status: 201 },
    { type: 'rejected', route: 'orders', code: 'FINGERPRINT_MISMATCH', status: 422 },
    { type: 'mode_switched', route: 'orders', from: 'observe', to: 'enforce' },
    { type: 'purged', route: 'payments', key: 'pay-1', existed: true },
    { type: 'executed', route: 'orders', key: 'ord-9', method: 'POST', status: 201 },
  ]
  for (const event of events) await log.record(event)
  await log.close()
  return path
}

let pair: ReturnType<typeof generateSigningKeyPair>
let good: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'idem-audit-cli-'))
  keys = `k1:${generateAuditKey()}`
  pair = generateSigningKeyPair()
  publicKey = join(dir, 'public.pem')
  writeFileSync(publicKey, pair.publicKeyPem)
  good = await writeLog('good.jsonl')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean)

/** A copy of the good log with one character of entry `seq`'s body changed. */
function tampered(seq: number): string {
  const copy = join(dir, `tampered-${seq}.jsonl`)
  const text = lines(good).map((line) => {
    const entry = JSON.parse(line) as { seq: number; body?: string }
    if (entry.seq !== seq || entry.body === undefined) return line
    const at = line.indexOf('"body":"') + '"body":"'.length + 3
    const flipped = line[at] === 'A' ? 'B' : 'A'
    return line.slice(0, at) + flipped + line.slice(at + 1)
  })
  writeFileSync(copy, `${text.join('\n')}\n`)
  return copy
}

describe('idem audit verify', () => {
  it('passes a good log and prints the summary', async () => {
    const { code, out } = await idem(
      'audit',
      'verify',
      '--file',
      good,
      '--keys',
      keys,
      '--public-key',
      `s1=${publicKey}`,
    )
    expect(code).toBe(0)
    expect(out).toContain('entries: 6, checkpoints: 2, last seq 8')
    expect(out).toContain('signed up to: seq 7')
    expect(out).toContain('unsigned: 0 entries')
    expect(out).toContain('torn tail: none')
    expect(out).toContain('MACs: checked')
    expect(out).toContain('signatures: checked')
    expect(out).toMatch(/OK: every entry holds$/)
  })

  it('without keys checks the chain and the signatures, and says that the MACs were not', async () => {
    const { code, out } = await idem('audit', 'verify', '--file', good, '--public-key', `s1=${pair.publicKeyPem}`)
    expect(code).toBe(0)
    expect(out).toContain('MACs: NOT checked')
  })

  it('fails a log with one byte changed, naming the entry and why (with or without keys)', async () => {
    const path = tampered(3)
    for (const extra of [['--keys', keys], []]) {
      const { code, out } = await idem('audit', 'verify', '--file', path, '--public-key', `s1=${publicKey}`, ...extra)
      expect(code).toBe(1)
      expect(out).toContain('FAILED: the first entry that does not hold is seq 3')
      expect(out).toContain('hash does not match')
    }
  })

  it('fails a log read with a wrong key, on its first entry', async () => {
    const wrong = `k1:${generateAuditKey()}`
    const { code, out } = await idem(
      'audit',
      'verify',
      '--file',
      good,
      '--keys',
      wrong,
      '--public-key',
      `s1=${publicKey}`,
    )
    expect(code).toBe(1)
    expect(out).toMatch(/is seq 1 .*tag does not verify/)
  })

  it('with --expect, catches a tail cut after the last checkpoint the log still has', async () => {
    const all = lines(good)
    const last = JSON.parse(all.at(-1) as string) as { seq: number; hash: string }
    const cut = join(dir, 'cut.jsonl')
    writeFileSync(cut, `${all.slice(0, 5).join('\n')}\n`)
    const args = ['audit', 'verify', '--file', cut, '--keys', keys, '--public-key', `s1=${publicKey}`]
    expect((await idem(...args)).code).toBe(0) // the log alone cannot show it
    const { code, out } = await idem(...args, '--expect', `${last.seq}:${last.hash}`)
    expect(code).toBe(1)
    expect(out).toContain('entries 6 to 8 are missing')
  })

  it('with --expect-file (checkpoints published to another file), catches a tail cut with its in-log checkpoint', async () => {
    const path = join(dir, 'published.jsonl')
    const kept = join(dir, 'published.checkpoints')
    const log = await AuditLog.open({
      storage: new FileAuditStorage({ path, sync: 'none' }),
      keyring: keyringFrom(keys),
      signer: signerFromPem('s1', pair.privateKeyPem),
      checkpoint: {
        everyEntries: 4,
        publish: ({ upTo, head, sig, signer, time }) =>
          appendFileSync(kept, `${JSON.stringify({ upTo, head, sig, signer, time })}\n`),
      },
    })
    for (let i = 0; i < 6; i++) await log.record({ type: 'executed', route: 'payments', key: `pay-${i}` })
    await log.close()
    // 1-4, cp5, 6-7, cp8 in the log; the two checkpoints kept elsewhere too.
    expect(lines(kept).map((line) => (JSON.parse(line) as { upTo: number }).upTo)).toEqual([4, 7])
    const args = ['audit', 'verify', '--file', path, '--keys', keys, '--public-key', `s1=${publicKey}`]
    expect((await idem(...args, '--expect-file', kept)).code).toBe(0)

    // The tail cut, the last in-log checkpoint with it: the log alone still holds.
    writeFileSync(path, `${lines(path).slice(0, 5).join('\n')}\n`)
    expect((await idem(...args)).code).toBe(0)
    const { code, out } = await idem(...args, '--expect-file', kept)
    expect(code).toBe(1)
    expect(out).toContain(
      'the log ends at entry 5 but a checkpoint kept elsewhere covers entry 7: entries 6 to 7 are missing (tail truncated?)',
    )
    // A last line cut short in the kept file (a crash mid-append): the one before it is used.
    appendFileSync(kept, '{"upTo":12,"he')
    expect((await idem(...args, '--expect-file', kept)).out).toContain('covers entry 7: entries 6 to 7 are missing')

    await expect(idem(...args, '--expect-file', kept, '--expect', `1:${'0'.repeat(64)}`)).rejects.toThrow(
      /--expect or --expect-file, not both/,
    )
    writeFileSync(join(dir, 'not-checkpoints'), 'hello\n{"upTo":"x"}\n')
    await expect(idem(...args, '--expect-file', join(dir, 'not-checkpoints'))).rejects.toThrow(
      /its last line is not a checkpoint/,
    )
  })

  it('reports a torn last line without accepting it', async () => {
    const torn = join(dir, 'torn.jsonl')
    writeFileSync(torn, readFileSync(good))
    appendFileSync(torn, '{"v":1,"seq":9,"time":"2026-')
    const { code, out } = await idem(
      'audit',
      'verify',
      '--file',
      torn,
      '--keys',
      keys,
      '--public-key',
      `s1=${publicKey}`,
    )
    expect(code).toBe(0)
    expect(out).toContain('entries: 6, checkpoints: 2')
    expect(out).toMatch(/torn tail: at 9 /)
  })

  it('refuses bad arguments as usage errors', async () => {
    const usage = async (...argv: string[]) => {
      const error = await idem('audit', ...argv).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error, argv.join(' ')).toBeInstanceOf(UsageError)
      return (error as Error).message
    }
    expect(await usage('verify')).toContain('exactly one of --file PATH or --postgres URL')
    expect(await usage('verify', '--file', good, '--postgres', 'postgres://x@h/db')).toContain('exactly one')
    expect(await usage('verify', '--file', join(dir, 'missing.jsonl'))).toContain('No audit log at')
    expect(await usage('verify', '--file', good, '--expect', '7')).toContain('--expect must be SEQ:HASH')
    expect(await usage('verify', '--file', good, '--keys', 'k1:c2hvcnQ=')).toContain('--keys: audit key k1 has 5 bytes')
    expect(await usage('verify', '--file', good, '--public-key', 'nokey')).toContain('write ID=PEM_OR_PATH')
    expect(await usage('verify', '--file', good, '--frobnicate')).toContain("Unknown option '--frobnicate'")
    // A signed log without its public key cannot be checked: say which key is needed.
    expect(await usage('verify', '--file', good, '--keys', keys)).toContain('--public-key s1=PEM_OR_PATH')
    expect(await usage('show', '--file', good)).toContain('needs the keys')
    expect(await usage('show', '--file', good, '--keys', keys, '--since', 'yesterday')).toContain('ISO 8601')
    expect(await usage('rotate')).toContain('Unknown audit command "rotate"')
  })

  it('exits 2 from the executable on a usage error', async () => {
    const { code, stderr } = await runIdemBin('audit', 'verify')
    expect(code).toBe(2)
    expect(stderr).toContain('exactly one of --file PATH or --postgres URL')
    expect(stderr).toContain('idem audit verify')
  })
})

describe('idem audit show', () => {
  const show = (...argv: string[]) => idem('audit', 'show', '--file', good, '--keys', keys, ...argv)

  it('prints every entry, one line each, checkpoints left out', async () => {
    const { code, out, err } = await show()
    expect(code).toBe(0)
    const printed = out.split('\n')
    expect(printed).toHaveLength(6)
    expect(printed[0]).toBe('1 2026-01-01T10:00:00.000Z executed route=payments key=pay-1 status=201 method=POST')
    expect(printed[2]).toBe('3 2026-01-01T10:02:00.000Z rejected route=orders code=FINGERPRINT_MISMATCH status=422')
    expect(printed.map((line) => line.split(' ')[0])).toEqual(['1', '2', '3', '4', '6', '7'])
    expect(err).toBe('6 matching entries of 6')
  })

  it('filters by route, key, type and time', async () => {
    const seqs = async (...argv: string[]) =>
      (await show(...argv)).out
        .split('\n')
        .filter(Boolean)
        .map((line) => Number(line.split(' ')[0]))
    expect(await seqs('--route', 'orders')).toEqual([3, 4, 7])
    expect(await seqs('--key', 'pay-1')).toEqual([1, 2, 6])
    expect(await seqs('--type', 'purged')).toEqual([6])
    expect(await seqs('--route', 'payments', '--type', 'executed')).toEqual([1])
    expect(await seqs('--since', '2026-01-01T10:02:00Z', '--until', '2026-01-01T10:03:30Z')).toEqual([3, 4])
    expect(await seqs('--key', 'nobody')).toEqual([])
  })

  it('prints JSON lines with --json', async () => {
    const { out } = await show('--type', 'mode_switched', '--json')
    expect(JSON.parse(out)).toEqual({
      seq: 4,
      time: '2026-01-01T10:03:00.000Z',
      type: 'mode_switched',
      route: 'orders',
      from: 'observe',
      to: 'enforce',
    })
  })

  it('prints nothing from the first entry that does not hold on, and says so', async () => {
    const path = tampered(3)
    for (const extra of [[], ['--public-key', `s1=${publicKey}`]]) {
      const { code, out, err } = await idem('audit', 'show', '--file', path, '--keys', keys, ...extra)
      expect(code).toBe(1)
      expect(out.split('\n').map((line) => line.split(' ')[0])).toEqual(['1', '2'])
      expect(err).toContain('STOPPED: the entry seq 3 does not hold')
    }
  })
})

describe('idem audit keygen', () => {
  it('prints a 32-byte key and an Ed25519 pair that work together', async () => {
    const { code, out } = await idem('audit', 'keygen')
    expect(code).toBe(0)
    const spec = /^IDEM_AUDIT_KEYS=(k1:\S+)$/m.exec(out)?.[1] as string
    expect(keyringFrom(spec).keys.get('k1')).toHaveLength(32)
    const privatePem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(out)?.[0] as string
    const publicPem = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/.exec(out)?.[0] as string
    expect(signerFromPem('s1', privatePem).privateKey.asymmetricKeyType).toBe('ed25519')
    expect(publicPem).toBeDefined()
    // Two runs, two different keys.
    expect((await idem('audit', 'keygen')).out).not.toContain(spec)
  })
})
