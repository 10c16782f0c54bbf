// The subjects a detector knows, at most `max` of them, least recently used first out.
//
// Each kind of subject sits in a map (to find it) and in a list from least to most recently used
// (to evict in O(1): a Map's own insertion order would do, but V8 leaves deleted entries as holes
// that its iterator walks over, which makes "the oldest key" slow under constant eviction). A
// subject moves to the recent end on its first event of each window: LRU at the granularity of a
// window. Scope labels (routes) take precedence over principals: a new subject evicts the least
// recently used principal, and a principal never evicts a scope label (it goes untracked when
// every slot holds a label), so a flood of distinct callers cannot blind the detector to routes.

import { Subject } from './subject.js'

/** Subjects by key, and in order of use. */
class Recency {
  readonly byKey = new Map<string, Subject>()
  #oldest: Subject | undefined
  #newest: Subject | undefined

  get size(): number {
    return this.byKey.size
  }

  add(subject: Subject): void {
    this.byKey.set(subject.key, subject)
    this.#append(subject)
  }

  touch(subject: Subject): void {
    if (subject === this.#newest) return
    this.#unlink(subject)
    this.#append(subject)
  }

  /** Drop the least recently used; false when empty. */
  evict(): boolean {
    const oldest = this.#oldest
    if (oldest === undefined) return false
    this.#unlink(oldest)
    this.byKey.delete(oldest.key)
    return true
  }

  clear(): void {
    this.byKey.clear()
    this.#oldest = undefined
    this.#newest = undefined
  }

  #append(subject: Subject): void {
    subject.older = this.#newest
    subject.newer = undefined
    if (this.#newest === undefined) this.#oldest = subject
    else this.#newest.newer = subject
    this.#newest = subject
  }

  #unlink(subject: Subject): void {
    if (subject.older === undefined) this.#oldest = subject.newer
    else subject.older.newer = subject.newer
    if (subject.newer === undefined) this.#newest = subject.older
    else subject.newer.older = subject.older
    subject.older = undefined
    subject.newer = undefined
  }
}

export class Subjects {
  readonly #max: number
  readonly #scopes = new Recency()
  /** By raw scope (`prefix|principal|METHOD route`): one per principal and route. */
  readonly #principals = new Recency()

  constructor(max: number) {
    this.#max = max
  }

  get size(): number {
    return this.#scopes.size + this.#principals.size
  }

  /** The subject of a scope label, made if new (evicting as needed). */
  scope(label: string, window: number): Subject {
    let subject = this.#scopes.byKey.get(label)
    if (subject === undefined) {
      if (this.size >= this.#max && !this.#principals.evict()) this.#scopes.evict()
      subject = new Subject(label, 'scope', label, undefined, window)
      this.#scopes.add(subject)
    } else if (subject.touched < window) {
      subject.touched = window
      this.#scopes.touch(subject)
    }
    return subject
  }

  /**
   * The subject of one principal on one route, by its raw HTTP scope (`prefix|principal|METHOD
   * route`, whose label is `label`), made if new; undefined when every slot holds a label.
   */
  principal(scope: string, label: string, window: number): Subject | undefined {
    let subject = this.#principals.byKey.get(scope)
    if (subject === undefined) {
      if (this.size >= this.#max && !this.#principals.evict()) return undefined
      const first = scope.indexOf('|')
      const principal = scope.slice(first + 1, scope.indexOf('|', first + 1))
      subject = new Subject(scope, 'principal', label, principal, window)
      this.#principals.add(subject)
    } else if (subject.touched < window) {
      subject.touched = window
      this.#principals.touch(subject)
    }
    return subject
  }

  /** Every subject, labels first. */
  *[Symbol.iterator](): IterableIterator<Subject> {
    yield* this.#scopes.byKey.values()
    yield* this.#principals.byKey.values()
  }

  clear(): void {
    this.#scopes.clear()
    this.#principals.clear()
  }
}
