// What every baseline is handed, and what it hands back: the same job the upsync CLI gets.
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export interface BaselineJob {
  /** The server's base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly project: string;
  /** The folder to mirror. */
  readonly dir: string;
  /** Requests in flight at once (the naive client ignores it: it is sequential by design). */
  readonly concurrency: number;
}

export interface BaselineResult {
  /** Files the server has with the local content at the end. */
  readonly ok: number;
  /** Files that did not arrive (an error the client gave up on). */
  readonly failed: number;
  /** Wall time of the part the baseline times itself (the ceiling excludes its preparation). */
  readonly timedMs: number;
  /** The first few error messages, for the report. */
  readonly errors: readonly string[];
}

export interface LocalFile {
  /** The item key: the relative path with `/` between segments. */
  readonly key: string;
  readonly path: string;
}

/** Every regular file under `dir`, keyed by its relative path, in a stable order. */
export async function listFiles(dir: string): Promise<LocalFile[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: LocalFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.push({ key: relative(dir, path).split(sep).join('/'), path });
  }
  return files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The item URL: each key segment percent-encoded on its own, as PROTOCOL.md asks. */
export function itemUrl(job: BaselineJob, key: string): string {
  const path = key.split('/').map(encodeURIComponent).join('/');
  return `${job.url}/v1/projects/${encodeURIComponent(job.project)}/items/${path}`;
}

/** The bearer token, from the environment like the upsync CLI (never from argv). */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const token = env.UPSYNC_TOKEN?.trim();
  if (!token) throw new Error('UPSYNC_TOKEN is not set');
  return token;
}

/** Keeps the first few distinct error messages. */
export class ErrorSample {
  readonly #messages: string[] = [];
  readonly #limit: number;
  constructor(limit = 5) {
    this.#limit = limit;
  }
  add(error: unknown): void {
    const message = (error as Error)?.message ?? String(error);
    if (this.#messages.length < this.#limit && !this.#messages.includes(message)) {
      this.#messages.push(message);
    }
  }
  get messages(): readonly string[] {
    return this.#messages;
  }
}
