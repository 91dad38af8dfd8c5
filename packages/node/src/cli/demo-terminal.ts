// The terminal the demo hands to `sync` and `run`. On a terminal their panel
// reads keys in raw mode, where Ctrl-C arrives as a key instead of a SIGINT:
// the command stops itself, and the demo must learn of it to stop too.
import type { KeyInput } from './panel/keyboard.ts';
import type { Terminal } from './panel/terminal.ts';

/** The keys that stop a command on the panel: q, and Ctrl-C in raw mode. */
const STOP_KEYS: ReadonlySet<string> = new Set(['q', 'Q', '\u0003']);

/** `terminal`, with `onStopKey` called for each stop key the panel reads. */
export function watchStopKeys(terminal: Terminal | null, onStopKey: () => void): Terminal | null {
  const input = terminal?.input;
  if (!terminal || !input) return terminal;
  const wrapped = new Map<(chunk: string) => void, (chunk: string) => void>();
  const watched: KeyInput = {
    ...(input.isTTY === undefined ? {} : { isTTY: input.isTTY }),
    setRawMode: (raw) => input.setRawMode(raw),
    setEncoding: (encoding) => input.setEncoding(encoding),
    on: (event, listener) => {
      const spy = (chunk: string): void => {
        listener(chunk);
        for (const char of chunk) if (STOP_KEYS.has(char)) onStopKey();
      };
      wrapped.set(listener, spy);
      return input.on(event, spy);
    },
    off: (event, listener) => {
      const spy = wrapped.get(listener) ?? listener;
      wrapped.delete(listener);
      return input.off(event, spy);
    },
    resume: () => input.resume(),
    pause: () => input.pause(),
  };
  return { ...terminal, input: watched };
}
