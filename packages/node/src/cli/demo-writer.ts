// Plays an AI tool streaming answers into its session logs: every tick, each
// live log is rewritten whole with one more line, as such tools do.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { streamedLine } from './demo-sample.ts';

export interface WriterOptions {
  readonly root: string;
  /** A folder outside `root` on the same disk, for the new content before it replaces a log. */
  readonly scratch: string;
  /** The live logs and their content now. */
  readonly files: ReadonlyMap<string, string>;
  /** Rewrites of each file per second. */
  readonly perSecond: number;
  readonly durationMs: number;
  readonly signal: AbortSignal;
}

/** Rewrites the files until `durationMs` passed or `signal` aborts; resolves with the write count. */
export function rewriteFiles(options: WriterOptions): Promise<number> {
  const contents = new Map(options.files);
  let writes = 0;
  const startedMs = Date.now();
  return new Promise<number>((resolve, reject) => {
    const finish = (): void => {
      clearInterval(timer);
      options.signal.removeEventListener('abort', finish);
      resolve(writes);
    };
    const tick = (): void => {
      if (Date.now() - startedMs >= options.durationMs) {
        finish();
        return;
      }
      try {
        for (const [key, content] of contents) {
          const next = content + streamedLine(key, writes, Date.now());
          // Written aside, then renamed over the log (as careful tools do): a
          // reader sees the old content or the new, never half a file.
          const aside = join(options.scratch, 'live-log.tmp');
          writeFileSync(aside, next);
          renameSync(aside, join(options.root, ...key.split('/')));
          contents.set(key, next);
          writes++;
        }
      } catch (error) {
        clearInterval(timer);
        options.signal.removeEventListener('abort', finish);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const timer = setInterval(tick, 1000 / options.perSecond);
    if (options.signal.aborted) finish();
    else options.signal.addEventListener('abort', finish, { once: true });
  });
}
