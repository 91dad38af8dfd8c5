// Fixed panel models for the renderer's tests (and a look at a frame by hand).
import type { PanelModel } from './panel-model.ts';

const noRequests = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, network: 0 };

export const sendingModel: PanelModel = {
  command: 'sync',
  phase: 'sending',
  paused: false,
  scanning: false,
  elapsedMs: 7_400,
  done: 120,
  total: 300,
  etaMs: 12_000,
  itemsPerSec: 15,
  outcomes: { created: 90, updated: 0, deleted: 0, skipped: 28, errored: 2, timedOut: 0 },
  deadLettered: 1,
  requests: { total: 125, byStatus: { ...noRequests, '2xx': 118, '4xx': 2, '5xx': 3, network: 2 } },
  retries: 5,
  backoffMs: 3_200,
  bytesSent: 48_000,
  pending: 182,
  retrying: 3,
  workers: { inFlight: 4, limit: 8, max: 16 },
  pacing: { host: '127.0.0.1:8787', ratePerSec: 20, ceilingPerSec: 25, adaptive: true, queued: 3 },
  breaker: { state: 'closed', retryInMs: null },
  errors: [
    { key: 'docs/a.md', cause: 'HTTP 503 Service Unavailable', state: 'retrying' },
    { key: 'docs/bad.md', cause: 'HTTP 400 invalid body', state: 'dead-lettered' },
  ],
  watching: null,
  stopping: null,
  keys: true,
};
