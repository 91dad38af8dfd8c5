export { systemClock, sleepOn, type Clock, type TimerHandle } from './time/clock.ts';
export {
  UpsyncError,
  ConfigError,
  StateError,
  TimeoutError,
  NetworkError,
  HttpError,
  ProtocolError,
  CircuitOpenError,
  RetryBudgetError,
  ClosedError,
  isUpsyncError,
  type ErrorCode,
  type UpsyncErrorOptions,
  type HttpErrorOptions,
} from './errors/upsync-error.ts';
export { Emitter, type EventMap, type Listener, type EmitterOptions } from './events/emitter.ts';
export { systemRandom, seededRandom, type Random } from './random/random.ts';
export {
  Scheduler,
  DEFAULT_DEBOUNCE,
  DEFAULT_BUFFER,
  type GroupSettings,
  type GroupState,
  type Release,
  type ReleaseOutcome,
  type ScheduleOptions,
  type ScheduledChange,
  type SchedulerOptions,
} from './scheduling/scheduler.ts';
export { TokenBucket, type TokenBucketOptions } from './limits/token-bucket.ts';
export { Semaphore, type SemaphoreOptions, type SemaphoreRelease } from './limits/semaphore.ts';
export {
  AdaptiveConcurrency,
  type AdaptiveConcurrencyOptions,
  type AdaptiveConcurrencyChange,
  type AdaptiveConcurrencyEvents,
} from './limits/adaptive-concurrency.ts';
export {
  AdaptiveRate,
  ACCEPTED_WINDOW_MS,
  CUBIC_C,
  DISCOVERY_DOUBLING_MS,
  MIN_RATE_PER_SEC,
  RATE_DECREASE_FACTOR,
  type AdaptiveRateOptions,
  type AdaptiveRatePhase,
} from './limits/adaptive-rate.ts';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerEvents,
  type BreakerState,
  type BreakerStateName,
  type BreakerPermit,
  type BreakerTransition,
} from './breaker/circuit-breaker.ts';
export { RollingRate, type RollingRateOptions } from './stats/rolling-rate.ts';
export {
  Stats,
  OUTCOMES,
  STATUS_CLASSES,
  type StatsOptions,
  type StatsSnapshot,
  type Outcome,
  type StatusClass,
  type RequestCounts,
  type CheckInvariantOptions,
} from './stats/stats.ts';
export {
  exponentialBackoff,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_CAP_MS,
  DEFAULT_BACKOFF_FACTOR,
  type Backoff,
  type Jitter,
  type ExponentialBackoffOptions,
} from './retry/backoff.ts';
export {
  RetryBudget,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_RETRY_TIME_MS,
  type RetryBudgetOptions,
  type RetryBudgetState,
  type RetryBudgetLimit,
} from './retry/retry-budget.ts';
export {
  parseRetryAfter,
  DEFAULT_MAX_RETRY_AFTER_MS,
  type ParseRetryAfterOptions,
} from './retry/retry-after.ts';
export {
  classifyStatus,
  classifyError,
  type RetryDecision,
  type RetryAction,
  type RetryReason,
  type ClassifyContext,
  type ClassifyStatusOptions,
  type ClassifyErrorOptions,
} from './retry/classify.ts';
export { retry, type RetryOptions, type RetryAttempt, type RetryEvent } from './retry/retry.ts';
export { parseSize } from './units/parse-size.ts';
export { parseDuration, formatDuration } from './units/parse-duration.ts';
export {
  assertFiniteNumber,
  assertNonNegative,
  assertPositive,
  assertInteger,
  assertInRange,
} from './validate.ts';
export { compareKeys } from './keys/compare-keys.ts';
export {
  DEFAULT_DEAD_LETTER_CAP,
  type OutboxStore,
  type OutboxScope,
  type OutboxVersion,
  type Lane,
  type VersionKind,
  type PendingBody,
  type StoredVersion,
  type PendingRow,
  type DeadLetterRow,
  type SyncedInput,
  type SyncedRow,
  type ClaimOptions,
  type ExtendLeaseOptions,
  type ReleaseOptions,
  type DeadLetterOptions,
  type ListDeadLettersOptions,
  type PurgeDeadLettersOptions,
  type OutboxCounts,
  type OutboxLock,
} from './outbox/outbox-store.ts';
export { MemoryOutboxStore, type MemoryOutboxStoreOptions } from './outbox/memory-store.ts';
// For store implementations (SQLite, IndexedDB, PostgreSQL): the checks and
// rules every store shares, so they behave alike.
export {
  LANES,
  laneRank,
  checkScope,
  checkKey,
  checkSeq,
  checkSeqList,
  checkOwner,
  checkLeaseMs,
  checkRelease,
  checkDeadLetter,
  checkDeadLetterCap,
  checkListDeadLetters,
  checkSynced,
  checkPacing,
  normalizeVersion,
  normalizeClaim,
  compareClaimOrder,
  isLeased,
  inheritRetryState,
  randomIdempotencyKey,
  settle,
  scopeId,
  type NormalizedVersion,
  type NormalizedClaim,
  type RetryState,
} from './outbox/outbox-checks.ts';
export * from './remote/index.ts';
export { keyProblem, MAX_KEY_BYTES } from './keys/key-problem.ts';
export {
  DEFAULT_RESWEEP_MS,
  Engine,
  type EngineOptions,
  type EngineReport,
  type EngineLogger,
} from './engine/engine.ts';
export { exitCode } from './engine/exit-code.ts';
export {
  Decider,
  type Listing,
  type ListedItem,
  type Decision,
  type DecisionReason,
  type RemoteSeen,
} from './engine/decider.ts';
export { loadListing, type ListingResult, type LoadListingOptions } from './engine/load-listing.ts';
export { sha256Hex } from './engine/version-body.ts';
export type { ReportedError } from './engine/recorder.ts';
export type {
  PushBody,
  PushOptions,
  PushReceipt,
  Delivery,
  FileRef,
  FileAccess,
  PauseInfo,
  PauseReason,
  EngineEvents,
  EngineStatus,
  OutcomeEvent,
} from './engine/engine-types.ts';
