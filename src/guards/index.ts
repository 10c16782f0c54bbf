// Business-level guards for SQL, run on any SqlExecutor (typically the `ctx.sql` of idem.transaction).

export type { RowId, SetColumns } from './sql-parts.js'
export {
  defineStateMachine,
  type StateMachine,
  type StateMachineOptions,
  StateTransitionError,
  type TransitionOptions,
  TransitionOutcome,
  type TransitionResult,
  type Transitions,
} from './state-machine.js'
export {
  defineVersionCheck,
  type VersionCheck,
  type VersionCheckOptions,
  type VersionedUpdate,
  VersionOutcome,
  type VersionResult,
} from './version-check.js'
