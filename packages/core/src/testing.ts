// Test helpers, kept out of the main entry so production bundles never carry them.
export { ManualClock, type ManualClockOptions } from './time/manual-clock.ts';
export { seededRandom } from './random/random.ts';
export {
  MemoryRemote,
  type MemoryRemoteOptions,
  type MemoryRemoteCall,
  type MemoryRemoteMethod,
  type AppliedChange,
  type FailureRule,
} from './remote/memory-remote.ts';
