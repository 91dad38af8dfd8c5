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
