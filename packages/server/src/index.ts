export { UpsyncServer, type UpsyncServerOptions, type ListenOptions } from './upsync-server.ts';
export { SqliteStorage, type SqliteStorageOptions } from './sqlite-storage.ts';
export {
  BodyTooLargeError,
  IDEMPOTENCY_TTL_MS,
  isKeptStatus,
  type ServerStorage,
  type StagedBody,
  type StoredAnswer,
  type WriteRequest,
  type WriteOutcome,
  type ItemMeta,
  type ListOptions,
  type ListPage,
  type StageOptions,
  type Conditions,
  type IdempotencyClaim,
} from './storage.ts';
export { TokenRegistry, type TokenRegistryOptions, type Principal } from './token-registry.ts';
export {
  FaultInjector,
  type FaultInjectorOptions,
  type FaultSettings,
  type FaultDecision,
} from './fault-injector.ts';
export { GroupCommit, type GroupCommitOptions } from './group-commit.ts';
export { checkKey, checkProject, parseItemKey } from './item-key.ts';
