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
