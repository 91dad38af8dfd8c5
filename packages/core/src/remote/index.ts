// The remote layer: the Remote interface, the upsync HTTP remote, and the HTTP
// transport middleware.
export type {
  Remote,
  RemoteBody,
  RemoteItemState,
  RemotePutRequest,
  RemotePutResult,
  RemoteDeleteResult,
  RemoteBatchResult,
  RemoteCallOptions,
  RemoteListOptions,
} from './remote.ts';
export {
  UpsyncHttpRemote,
  DEFAULT_PAGE_SIZE,
  MAX_BATCH_ITEMS,
  MAX_BATCH_BYTES,
  type UpsyncHttpRemoteOptions,
} from './upsync-http-remote.ts';
export { bytesToBase64, hexToBytes } from './base64.ts';
export {
  applyMiddleware,
  bodySizeOf,
  canResendBody,
  describeUrl,
  hostOf,
  isSafeToResend,
  onBodySettled,
  openBody,
  parseJsonBody,
  type HttpBody,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
  type HttpMiddleware,
} from './http/http-transport.ts';
export { safeCause, errorCodeOf } from './http/safe-cause.ts';
export { redactSecret } from './http/redact-secret.ts';
export {
  TransportMonitor,
  type HostPacing,
  type HostPacingPart,
} from './http/transport-monitor.ts';
export { fetchTransport, type FetchTransportOptions } from './http/fetch-transport.ts';
export {
  timeoutMiddleware,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS_PER_MIB,
  type TimeoutMiddlewareOptions,
} from './http/timeout-middleware.ts';
export { retryMiddleware, type RetryMiddlewareOptions } from './http/retry-middleware.ts';
export {
  rateLimitMiddleware,
  type RateLimitMiddlewareOptions,
} from './http/rate-limit-middleware.ts';
export {
  concurrencyMiddleware,
  DEFAULT_CONCURRENCY,
  type ConcurrencyMiddlewareOptions,
} from './http/concurrency-middleware.ts';
export {
  circuitBreakerMiddleware,
  type CircuitBreakerMiddlewareOptions,
} from './http/circuit-breaker-middleware.ts';
export { authMiddleware, type AuthMiddlewareOptions } from './http/auth-middleware.ts';
export { statsMiddleware, type StatsMiddlewareOptions } from './http/stats-middleware.ts';
export { composeTransport, type ComposeTransportOptions } from './http/compose-transport.ts';
