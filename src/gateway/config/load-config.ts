// Reading the gateway's config file: YAML or JSON, `${ENV}` references filled in, then the schema.
// Everything wrong with a file is reported at once, each problem with the file and the field's
// path (`routes[1].mode`), so that an operator fixes the file in one pass instead of one error per start.

import { readFile } from 'node:fs/promises'
import { type Document, isMap, isScalar, isSeq, parseDocument, parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { type GatewayConfig, gatewayConfigSchema } from './schema.js'

export interface GatewayConfigIssue {
  /** Where in the file: `routes[1].mode`, `stores.main.url`; '' for the file as a whole. */
  readonly path: string
  readonly message: string
}

/** A config file (or object) that cannot be used, with every problem found in it. */
export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError'
  readonly file: string | undefined
  readonly issues: GatewayConfigIssue[]

  constructor(file: string | undefined, issues: GatewayConfigIssue[]) {
    // One line per issue, each starting with the file, as compilers do: greppable and clickable.
    const label = file ?? 'gateway config'
    super(issues.map((issue) => `${label}: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`).join('\n'))
    this.file = file
    this.issues = issues
  }
}

/** Read and validate the config file at `file`. */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<GatewayConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new GatewayConfigError(file, [{ path: '', message: `cannot read the file: ${osReason(error)}` }])
  }
  return parseConfig(text, file, env)
}

/**
 * Parse a config file's text (YAML, or JSON, which is YAML too), fill in `${NAME}` and
 * `${NAME:-default}` from `env` in every string value, and validate it. `file` only names the
 * source in errors.
 */
export function parseConfig(text: string, file?: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  const [syntaxError] = doc.errors
  if (syntaxError !== undefined) {
    // Only the first: after a syntax error the parser is out of step, and what it reports next (often
    // one error per token) is noise that buries the one line to fix.
    throw new GatewayConfigError(file, [
      { path: '', message: yamlErrorMessage(syntaxError.message, syntaxError.linePos?.[0]) },
    ])
  }
  if (!isMap(doc.contents)) {
    const found = doc.contents === null ? 'the document is empty' : `found ${describeNode(doc.contents)}`
    throw new GatewayConfigError(file, [
      { path: '', message: `expected a mapping of settings (listen, upstream, stores, routes, ...); ${found}` },
    ])
  }
  const envIssues = substituteEnv(doc, env)
  let plain: unknown
  try {
    plain = doc.toJS()
  } catch (error) {
    // Aliases are resolved only here: `*name` without its `&name`, or aliases that expand past
    // the parser's limit (a "billion laughs" file), throw a ReferenceError from the yaml library.
    throw new GatewayConfigError(file, [
      { path: '', message: `cannot resolve the document: ${(error as Error).message}` },
    ])
  }
  return validate(plain, file, envIssues)
}

/** Validate a config given as an object (by code rather than a file): the same checks and errors as a file. */
export function validateConfig(input: unknown, file?: string): GatewayConfig {
  return validate(input, file, [])
}

/** A copy of `config` safe to show (admin API, logs): tokens, secrets and passwords replaced by "[redacted]". */
export function redactConfig(config: GatewayConfig): unknown {
  return redact(config)
}

// ---------------------------------------------------------------------------------------------
// Validation and readable issues

type Path = readonly PropertyKey[]
type ZodIssue = z.core.$ZodIssue

function validate(input: unknown, file: string | undefined, envIssues: readonly PathIssue[]): GatewayConfig {
  const result = gatewayConfigSchema.safeParse(input, { reportInput: true, error: readableMessage })
  // A field whose variable is missing still holds the literal `${NAME}`; what the schema says about
  // that text would only hide the real problem.
  const schemaIssues = result.success
    ? []
    : result.error.issues.flatMap((issue) => flattenIssue(issue, [])).filter((i) => !underAny(i.path, envIssues))
  const issues = [...envIssues, ...schemaIssues]
  if (issues.length > 0 || !result.success) {
    throw new GatewayConfigError(
      file,
      issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
    )
  }
  return result.data
}

interface PathIssue {
  readonly path: Path
  readonly message: string
}

/**
 * zod's wording for the issues whose schema gives no message of its own: says what was expected
 * and what was found, in words a config file's reader knows.
 */
function readableMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required'
      if (issue.input === null) return `required (the value is empty; expected ${issue.expected})`
      return `expected ${issue.expected}, got ${describeValue(issue.input)}`
    case 'unrecognized_keys':
      return unknownKeysMessage(issue.keys, allowedKeys(issue.inst))
    case 'invalid_union':
      if (issue.input === undefined) return 'required'
      if ('options' in issue && Array.isArray(issue.options)) {
        const options = issue.options.map((option) => JSON.stringify(option)).join('|')
        return issue.discriminator !== undefined && !hasKey(issue.input, issue.discriminator)
          ? `required: one of ${options}`
          : `expected one of ${options}`
      }
      return 'does not match any of the allowed forms'
    case 'too_small':
    case 'too_big':
      return sizeMessage(issue)
    case 'invalid_format':
      return issue.format === 'regex' ? `must match ${issue.pattern}` : `must be a valid ${issue.format}`
    default:
      // invalid_value already reads well: 'Invalid option: expected one of "off"|"observe"|"enforce"'.
      return undefined
  }
}

function sizeMessage(issue: z.core.$ZodRawIssue<z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall>): string {
  const small = issue.code === 'too_small'
  const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum
  const comparison = small ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than'
  const unit = issue.origin === 'string' ? ' characters' : issue.origin === 'array' ? ' items' : ''
  return `must be ${comparison} ${String(bound)}${unit}`
}

/**
 * One zod issue as the issues a reader wants: unknown keys one per key, a union's failure as the
 * failure of the form the input was evidently meant to be, a record key's failure with its reason.
 */
function flattenIssue(issue: ZodIssue, prefix: Path): PathIssue[] {
  const path = [...prefix, ...issue.path]
  switch (issue.code) {
    case 'unrecognized_keys':
      // readableMessage wrote one line per unknown key: one issue (one line of the error) each.
      return issue.message.split('\n').map((message) => ({ path, message }))
    case 'invalid_union': {
      const meant = issue.input === undefined ? [] : issue.errors.filter(matchesShape)
      const [branch] = meant
      if (meant.length === 1 && branch !== undefined) return branch.flatMap((inner) => flattenIssue(inner, path))
      return [{ path, message: missingMessage(issue) ?? issue.message }]
    }
    case 'invalid_key':
      return [
        {
          path,
          message: `invalid name ${JSON.stringify(issue.input)}: ${issue.issues.map((i) => i.message).join('; ')}`,
        },
      ]
    default:
      return [{ path, message: missingMessage(issue) ?? issue.message }]
  }
}

/** "required" for a missing field, keeping the schema's own hint when it has one ("required: must be an http:// URL"). */
function missingMessage(issue: ZodIssue): string | undefined {
  if ((issue.code !== 'invalid_type' && issue.code !== 'invalid_union') || issue.input !== undefined) return undefined
  return issue.message === 'required' ? 'required' : `required: ${issue.message}`
}

/**
 * Whether a union branch failed only inside the input, not on its shape: no unknown or wrong-typed
 * input at the branch's root and no missing top-level field. `{ jwt: { secrett: ... } }` fits the
 * `{ jwt }` form and not the `{ header }` form, so the reader hears about `secrett`.
 */
function matchesShape(branch: readonly ZodIssue[]): boolean {
  return !branch.some(
    (issue) => issue.path.length === 0 || (issue.path.length === 1 && missingMessage(issue) !== undefined),
  )
}

function unknownKeysMessage(keys: readonly string[], allowed: readonly string[]): string {
  return keys
    .map((key) => {
      const suggestion = closest(key, allowed)
      if (suggestion !== undefined) return `unknown key "${key}" (did you mean "${suggestion}"?)`
      return allowed.length > 0 ? `unknown key "${key}" (allowed here: ${allowed.join(', ')})` : `unknown key "${key}"`
    })
    .join('\n')
}

/** The keys a strict object schema knows, read from the schema that raised the issue. */
function allowedKeys(schema: unknown): string[] {
  const shape = (schema as { _zod?: { def?: { shape?: unknown } } } | undefined)?._zod?.def?.shape
  return typeof shape === 'object' && shape !== null ? Object.keys(shape) : []
}

/** The allowed key within two edits of `key` (a typo), if exactly one is closest. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] as number
}

/** `routes[1].match.path`, `stores.main.url`, `stores["my store"]`; '' for the root. */
function formatPath(path: Path): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$-]*$/.test(segment))
      text += text === '' ? segment : `.${segment}`
    else text += `[${JSON.stringify(String(segment))}]`
  }
  return text
}

function underAny(path: Path, parents: readonly PathIssue[]): boolean {
  return parents.some((parent) => parent.path.every((segment, i) => path[i] === segment))
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object' && value !== null) return 'a mapping'
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`
  return `${typeof value} ${String(value)}`
}

function hasKey(value: unknown, key: PropertyKey): boolean {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, key)
}

// ---------------------------------------------------------------------------------------------
// YAML and the environment

/** yaml's message without its own "at line 3, column 7:" and code excerpt, position first. */
function yamlErrorMessage(message: string, position: { line: number; col: number } | undefined): string {
  const firstLine = (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '')
  return position === undefined ? firstLine : `line ${position.line}, column ${position.col}: ${firstLine}`
}

function describeNode(node: unknown): string {
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) return describeValue(node.value)
  return 'something else'
}

// `${NAME}`, `${NAME:-default}`; `$${` writes a literal `${`.
const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g
const REFERENCE_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s

/**
 * Replace the references in every string value of the document, in place. Returns an issue per
 * field that names a variable that is not set (and has no default) or is not a valid reference.
 *
 * This works on the YAML nodes rather than the parsed value so that an unquoted `port: ${PORT}` reads
 * as if the number were written there (8080, not "8080"), while a quoted `"${TOKEN}"` stays a string.
 */
function substituteEnv(doc: Document.Parsed, env: NodeJS.ProcessEnv): PathIssue[] {
  const issues: PathIssue[] = []
  const visit = (node: unknown, path: PropertyKey[]): void => {
    if (isMap(node)) {
      for (const pair of node.items)
        visit(pair.value, [...path, String(isScalar(pair.key) ? pair.key.value : pair.key)])
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) visit(item, [...path, index])
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      const problems: string[] = []
      const replaced = node.value.replace(REFERENCE, (whole, body: string | undefined) => {
        if (body === undefined) return '${'
        const reference = REFERENCE_BODY.exec(body)
        if (reference === null) {
          problems.push(`${whole} is not a valid reference: use \${NAME} or \${NAME:-default}`)
          return whole
        }
        const [, name = '', fallback] = reference
        const value = env[name]
        if (fallback !== undefined) return value === undefined || value === '' ? fallback : value
        if (value === undefined) problems.push(`environment variable ${name} is not set`)
        return value ?? whole
      })
      if (problems.length > 0) issues.push({ path, message: problems.join('; ') })
      else node.value = node.type === 'PLAIN' ? plainScalar(replaced) : replaced
    }
    // An alias (`*name`) shares its anchor's node, which is replaced where the anchor is defined.
  }
  visit(doc.contents, [])
  return issues
}

/** An unquoted value as YAML would read it: numbers and booleans as such, anything else as text. */
function plainScalar(text: string): string | number | boolean {
  try {
    const value: unknown = parseYaml(text)
    return typeof value === 'number' || typeof value === 'boolean' ? value : text
  } catch {
    return text
  }
}

function osReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  // "ENOENT: no such file or directory, open '/etc/idem.yaml'": the file is already named in front.
  return error.message.replace(/, \w+ '.*'$/, '')
}

// ---------------------------------------------------------------------------------------------
// Redaction

const REDACTED = '[redacted]'
/**
 * Fields that hold a secret wherever they appear (admin.token, jwt.secret, signature.secret, and
 * the audit log's encryption keys and checkpoint signing key: audit.keys, audit.signingKey.privateKey).
 */
const SECRET_FIELDS = new Set(['token', 'secret', 'password', 'keys', 'privateKey'])

function redact(value: unknown, field?: string): unknown {
  if (Array.isArray(value)) return value.map((item) => redact(item))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, redact(inner, key)]))
  }
  if (typeof value !== 'string' || field === undefined) return value
  if (SECRET_FIELDS.has(field)) return REDACTED
  if (field === 'url') return redactUrl(value)
  return value
}

/** A store URL without its password, in the userinfo or as a `password` query parameter. */
function redactUrl(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return REDACTED
  }
  const queryHasPassword = url.searchParams.has('password')
  if (url.password === '' && !queryHasPassword) return text
  // Built by hand: the URL setters would percent-encode the brackets of "[redacted]".
  const user = url.password === '' ? (url.username === '' ? '' : `${url.username}@`) : `${url.username}:${REDACTED}@`
  const search = queryHasPassword
    ? `?${[...url.searchParams].map(([key, value]) => `${key}=${key === 'password' ? REDACTED : encodeURIComponent(value)}`).join('&')}`
    : url.search
  return `${url.protocol}//${user}${url.host}${url.pathname}${search}${url.hash}`
}
