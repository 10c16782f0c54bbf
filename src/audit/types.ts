// The audit log's shapes: what is recorded (an event), how it sits in storage (an entry: a link
// of a hash chain with its body encrypted), the checkpoints that sign the chain, and the keys.
//
// An entry is one JSON object (one line of a file, one row of a table):
//   { v: 1, seq, time, kind: 'entry', kid, alg, prev, iv, body, tag, hash }
//   { v: 1, seq, time, kind: 'checkpoint', signer, prev, upTo, head, sig, hash }
// `prev` is the previous entry's `hash` (64 zeros before the first). `hash` is the SHA-256 (hex)
// of the entry's canonical header and payload (every field but `hash`, in the order above). For
// an `entry`, the body is the event's JSON, encrypted with the key `kid`: AES-256-GCM (`iv` 12
// bytes, `tag` the GCM tag), or SM4-CTR with HMAC-SM3 over iv ‖ ciphertext (encrypt-then-MAC;
// `iv` 16 bytes, `tag` the HMAC) — both authenticate the header too (as GCM's AAD, or inside the
// HMAC), so a header moved to another body is detected. A `checkpoint` is an Ed25519 signature
// by the key `signer` over `idem-audit-checkpoint\n<upTo>\n<head>`: entries up to `upTo` hash to
// `head`. Nobody without the signing key can rebuild the chain or cut its tail past a checkpoint.

/** What an auditor reads back: a decision or an operator's action, with the time it was recorded. */
export interface AuditEvent {
  /** executed | replayed | rejected | failed_open | purged | mode_switched | config_reloaded | … */
  type: string
  /** The route (gateway) or scope (library) the event is about. */
  route?: string
  /** The idempotency key, when there is one (the body is encrypted: keys may be recorded). */
  key?: string
  /** For rejections: the problem's code (IN_PROGRESS, FINGERPRINT_MISMATCH, RATE_LIMITED, BAD_SIGNATURE…). */
  code?: string
  /** Anything else worth keeping: method, status, mode from/to, principal hash, … (JSON values). */
  [detail: string]: unknown
}

export type AuditAlgorithm = 'aes-256-gcm' | 'sm4-ctr-hmac-sm3'

export interface SealedEntry {
  v: 1
  seq: number
  /** ISO 8601 with milliseconds, UTC. */
  time: string
  kind: 'entry'
  kid: string
  alg: AuditAlgorithm
  prev: string
  iv: string
  body: string
  tag: string
  hash: string
}

export interface CheckpointEntry {
  v: 1
  seq: number
  time: string
  kind: 'checkpoint'
  /** Id of the Ed25519 key that signed. */
  signer: string
  prev: string
  /** The last sequence number the signature covers (the entry before this checkpoint). */
  upTo: number
  /** The `hash` of entry `upTo`. */
  head: string
  /** base64 Ed25519 signature. */
  sig: string
  hash: string
}

export type AuditEntry = SealedEntry | CheckpointEntry

/** Encryption keys by id, and which one new entries use; keys never come from the log. */
export interface AuditKeyring {
  /** Key id → key bytes: 32 for aes-256-gcm; 32 for sm4-ctr-hmac-sm3 (16 for SM4, 16 for the HMAC-SM3 key). */
  keys: ReadonlyMap<string, Uint8Array>
  /** The id new entries are encrypted with. */
  active: string
  alg: AuditAlgorithm
}

/** Checkpoint signing (writer side) and checking (verifier side): separate from the encryption keys. */
export interface CheckpointSigner {
  id: string
  /** Ed25519 private key (a node:crypto KeyObject or PEM). */
  privateKey: import('node:crypto').KeyObject
}

export interface CheckpointVerifier {
  /** Signer id → Ed25519 public key. */
  publicKeys: ReadonlyMap<string, import('node:crypto').KeyObject>
}

/** Where entries are kept: appended in order, read back in order. */
export interface AuditStorage {
  /** The last complete entry, or undefined for an empty log. A torn last line/row is not an entry. */
  last(): Promise<AuditEntry | undefined>
  /** Append entries (already sealed, in sequence) durably per the storage's sync policy. */
  append(entries: readonly AuditEntry[]): Promise<void>
  /** Every stored item in order, raw: an entry, or `{ torn: text }` for a line that is not one. */
  read(): AsyncIterable<AuditEntry | { torn: string; position: number }>
  close(): Promise<void>
}

/** What `verifyAuditLog` found. */
export interface AuditVerification {
  ok: boolean
  entries: number
  checkpoints: number
  /** The last sequence number a valid checkpoint signature covers (0 when none). */
  signedUpTo: number
  /** The first entry that does not hold, with why; undefined when all hold. */
  firstBad?: { seq: number | undefined; position: number; reason: string }
  /** A last line/row that is not a complete entry (a crash mid-append): reported, never accepted. */
  tornTail?: { position: number }
  /** Entries after the last checkpoint: chained but not yet covered by a signature. */
  unsigned: number
  /** Present when verified with `signatures: false`: the checkpoints' signatures were not checked. */
  signatures?: 'not checked'
}
