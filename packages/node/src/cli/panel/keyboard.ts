/** What a key press asks for. */
export type KeyAction = 'pause' | 'stop' | 'interrupt';

/**
 * The actions in a chunk of raw terminal input, in order: `p` pauses or
 * resumes, `q` stops, and Ctrl-C (which raw mode delivers as \x03 instead of
 * a SIGINT) interrupts. Everything else is ignored.
 */
export function keyActions(chunk: string): KeyAction[] {
  const actions: KeyAction[] = [];
  for (const char of chunk) {
    if (char === 'p' || char === 'P') actions.push('pause');
    else if (char === 'q' || char === 'Q') actions.push('stop');
    else if (char === '\u0003') actions.push('interrupt');
  }
  return actions;
}

/** The part of a TTY read stream the keyboard needs. */
export interface KeyInput {
  readonly isTTY?: boolean;
  setRawMode(raw: boolean): unknown;
  setEncoding(encoding: BufferEncoding): unknown;
  on(event: 'data', listener: (chunk: string) => void): unknown;
  off(event: 'data', listener: (chunk: string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/**
 * Reads single key presses from a terminal (raw mode) until the returned
 * function is called, which puts the terminal back as it was. Safe to call
 * that more than once.
 */
export function listenKeys(input: KeyInput, onAction: (action: KeyAction) => void): () => void {
  const onData = (chunk: string): void => {
    for (const action of keyActions(chunk)) onAction(action);
  };
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.on('data', onData);
  input.resume();
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    input.off('data', onData);
    input.setRawMode(false);
    // A paused stdin no longer keeps the process alive.
    input.pause();
  };
}
