// Verifying a whole audit log in one streaming pass (constant memory: one item of look-ahead).
//
// For each item, in this order: shape and version; sequence (a gap = deleted entries, a later
// entry first and the missing one right after = reordered); `prev` = the previous item's hash;
// `hash` recomputed; for an entry, with a keyring, its tag/MAC; for a checkpoint, that it covers
// exactly the chain before it and that its signature verifies. Stops at the first item that does
// not hold. `expected` (a checkpoint kept elsewhere) then catches a tail cut after the last
// in-log checkpoint, which the log alone cannot show.
//
// `position` is the item's 1-based ordinal in the stream (a file's line number when it has no
// blank lines), except for a torn item, whose position is the one storage reported.

import { checkpointSignatureValid } from './checkpoint.js'
import { AuditIntegrityError } from './errors.js'
import { entryHash, entryShapeProblem, GENESIS, openCheckedEntry } from './seal.js'
import type { AuditEntry, AuditKeyring, AuditVerification, CheckpointEntry, CheckpointVerifier } from './types.js'

type Torn = { torn: string; position: number }
type Item = AuditEntry | Torn

export interface VerifyAuditLogOptions {
  /** Check each body's tag/MAC too (without it, only the chain and the signatures are checked). */
  keyring?: Pick<AuditKeyring, 'keys'>
  /** Public keys for the checkpoints; without it any checkpoint is a failure (it cannot be checked). */
  verifier?: CheckpointVerifier
  /** A checkpoint known from elsewhere: the log must contain entry `upTo` with hash `head`. */
  expected?: { upTo: number; head: string }
  /**
   * `false`: do not check the checkpoints' signatures (no verifier needed); they are still
   * checked as links of the chain (covering exactly the chain before them). The result then says
   * `signatures: 'not checked'` and its `signedUpTo` is 0 (no signature was verified). Default true.
   */
  signatures?: boolean
}

type Bad = NonNullable<AuditVerification['firstBad']>

export async function verifyAuditLog(
  items: AsyncIterable<Item> | Iterable<Item>,
  options: VerifyAuditLogOptions,
): Promise<AuditVerification> {
  const stream = lookahead(items)
  try {
    return await verifyStream(stream, options)
  } finally {
    // Stopping early must still release what the storage holds open (a file handle, a cursor).
    await stream.close()
  }
}

async function verifyStream(stream: Lookahead, options: VerifyAuditLogOptions): Promise<AuditVerification> {
  let entries = 0
  let checkpoints = 0
  let signedUpTo = 0
  let unsigned = 0
  let lastSeq = 0
  let prevHash = GENESIS
  let position = 0
  let expectedMet = false
  let tornTail: { position: number } | undefined
  let firstBad: Bad | undefined

  const checkSignatures = options.signatures !== false
  const result = (): AuditVerification => ({
    ok: firstBad === undefined,
    entries,
    checkpoints,
    signedUpTo: checkSignatures ? signedUpTo : 0,
    ...(firstBad === undefined ? {} : { firstBad }),
    ...(tornTail === undefined ? {} : { tornTail }),
    unsigned,
    ...(checkSignatures ? {} : { signatures: 'not checked' as const }),
  })

  for (let item = await stream.next(); item !== undefined; item = await stream.next()) {
    position += 1
    if (isTorn(item)) {
      // Only the very last item may be torn (a crash mid-append); anything after it means damage.
      if ((await stream.peek()) === undefined) {
        tornTail = { position: item.position }
        break
      }
      firstBad = {
        seq: undefined,
        position: item.position,
        reason: `item at position ${item.position} (after entry ${lastSeq}) is not a complete entry, and entries follow it (corrupted?)`,
      }
      return result()
    }

    const problem = entryShapeProblem(item)
    if (problem !== undefined) {
      const seq = seqOf(item)
      firstBad = { seq, position, reason: `${label(item, seq)}: not a valid entry: ${problem}` }
      return result()
    }

    const name = label(item, item.seq)
    if (item.seq !== lastSeq + 1) {
      firstBad = { seq: item.seq, position, reason: await sequenceProblem(item.seq, lastSeq, stream.peek()) }
      return result()
    }
    if (item.prev !== prevHash) {
      const what = lastSeq === 0 ? 'the genesis value (64 zeros)' : `the hash of entry ${lastSeq}`
      firstBad = {
        seq: item.seq,
        position,
        reason: `${name}: prev does not match ${what} (chain broken: an entry modified, replaced or inserted?)`,
      }
      return result()
    }
    if (entryHash(item) !== item.hash) {
      firstBad = { seq: item.seq, position, reason: `${name}: hash does not match its content (modified?)` }
      return result()
    }

    if (item.kind === 'entry') {
      if (options.keyring !== undefined) {
        const reason = tagProblem(item, options.keyring)
        if (reason !== undefined) {
          firstBad = { seq: item.seq, position, reason: `${name}: ${reason}` }
          return result()
        }
      }
      entries += 1
      unsigned += 1
    } else {
      const reason = checkpointProblem(item, lastSeq, prevHash, checkSignatures ? options.verifier : null)
      if (reason !== undefined) {
        firstBad = { seq: item.seq, position, reason: `${name}: ${reason}` }
        return result()
      }
      checkpoints += 1
      signedUpTo = item.upTo
      unsigned = 0
    }

    if (options.expected !== undefined && item.seq === options.expected.upTo) {
      if (item.hash !== options.expected.head) {
        firstBad = {
          seq: item.seq,
          position,
          reason: `${name}: hash differs from the checkpoint kept elsewhere (history rewritten?)`,
        }
        return result()
      }
      expectedMet = true
    }
    lastSeq = item.seq
    prevHash = item.hash
  }

  if (options.expected !== undefined && !expectedMet && options.expected.upTo > 0) {
    const { upTo } = options.expected
    const missing = lastSeq + 1 === upTo ? `entry ${upTo} is` : `entries ${lastSeq + 1} to ${upTo} are`
    firstBad = {
      seq: lastSeq + 1,
      position: position + 1,
      reason: `the log ends at entry ${lastSeq} but a checkpoint kept elsewhere covers entry ${upTo}: ${missing} missing (tail truncated?)`,
    }
  }
  return result()
}

/** A gap (deleted entries) or, when the missing entry comes right after, a swap (reordered). */
async function sequenceProblem(seq: number, lastSeq: number, next: Promise<Item | undefined>): Promise<string> {
  const subject = lastSeq === 0 ? `the log starts with entry ${seq}` : `entry ${seq} follows ${lastSeq}`
  if (seq <= lastSeq) {
    return `${subject}: out of order (entry ${seq} duplicated or moved; reordered?)`
  }
  const following = await next
  if (seq === lastSeq + 2 && following !== undefined && seqOf(following) === lastSeq + 1) {
    return `${subject}: entries ${lastSeq + 1} and ${seq} are swapped (reordered)`
  }
  const missing = seq === lastSeq + 2 ? `entry ${lastSeq + 1} is` : `entries ${lastSeq + 1} to ${seq - 1} are`
  return `${subject}: ${missing} missing`
}

function tagProblem(entry: AuditEntry & { kind: 'entry' }, keyring: Pick<AuditKeyring, 'keys'>): string | undefined {
  try {
    openCheckedEntry(entry, keyring)
    return undefined
  } catch (error) {
    if (error instanceof AuditIntegrityError) return error.reason
    throw error
  }
}

function checkpointProblem(
  cp: CheckpointEntry,
  lastSeq: number,
  prevHash: string,
  /** null: signatures not checked. */
  verifier: CheckpointVerifier | undefined | null,
): string | undefined {
  if (cp.upTo !== lastSeq) return `covers entries up to ${cp.upTo} but follows entry ${lastSeq}`
  if (cp.head !== prevHash) return `head does not match the hash of entry ${lastSeq}`
  if (verifier === null) return undefined
  if (verifier === undefined || !verifier.publicKeys.has(cp.signer)) {
    return `cannot check checkpoint signature: no public key for signer ${cp.signer}`
  }
  if (!checkpointSignatureValid(cp, verifier)) {
    return 'signature does not verify (chain rebuilt without the signing key?)'
  }
  return undefined
}

function isTorn(item: Item): item is Torn {
  return typeof item === 'object' && item !== null && 'torn' in item
}

function label(item: unknown, seq: number | undefined): string {
  const kind = typeof item === 'object' && item !== null ? (item as { kind?: unknown }).kind : undefined
  const noun = kind === 'checkpoint' ? 'checkpoint' : 'entry'
  return seq === undefined ? 'item' : `${noun} ${seq}`
}

function seqOf(item: unknown): number | undefined {
  if (typeof item !== 'object' || item === null) return undefined
  const seq = (item as { seq?: unknown }).seq
  return Number.isSafeInteger(seq) && (seq as number) > 0 ? (seq as number) : undefined
}

interface Lookahead {
  next(): Promise<Item | undefined>
  peek(): Promise<Item | undefined>
  close(): Promise<void>
}

/** An iterator over sync or async items with one item of look-ahead. */
function lookahead(items: AsyncIterable<Item> | Iterable<Item>): Lookahead {
  const iterator: AsyncIterator<Item> | Iterator<Item> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]()
  let buffered: { item: Item | undefined } | undefined
  let done = false
  const pull = async (): Promise<Item | undefined> => {
    if (done) return undefined
    const step = await iterator.next()
    if (step.done) done = true
    return step.done ? undefined : step.value
  }
  return {
    async next() {
      if (buffered !== undefined) {
        const { item } = buffered
        buffered = undefined
        return item
      }
      return pull()
    },
    async peek() {
      if (buffered === undefined) buffered = { item: await pull() }
      return buffered.item
    },
    async close() {
      if (!done) {
        done = true
        await iterator.return?.()
      }
    },
  }
}
