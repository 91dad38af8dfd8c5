import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { keyActions, listenKeys, type KeyInput } from './keyboard.ts';

class FakeInput extends EventEmitter implements KeyInput {
  raw: boolean[] = [];
  flowing = false;
  setRawMode(raw: boolean): this {
    this.raw.push(raw);
    return this;
  }
  setEncoding(): this {
    return this;
  }
  resume(): this {
    this.flowing = true;
    return this;
  }
  pause(): this {
    this.flowing = false;
    return this;
  }
}

describe('keyActions', () => {
  it('reads p, q and Ctrl-C in order and ignores the rest', () => {
    expect(keyActions('xpQ\u0003 P')).toEqual(['pause', 'stop', 'interrupt', 'pause']);
    expect(keyActions('\u001B[A')).toEqual([]);
  });
});

describe('listenKeys', () => {
  it('takes the terminal into raw mode and gives it back once', () => {
    const input = new FakeInput();
    const seen: string[] = [];
    const restore = listenKeys(input, (action) => seen.push(action));
    expect(input.raw).toEqual([true]);
    expect(input.flowing).toBe(true);
    input.emit('data', 'pq');
    expect(seen).toEqual(['pause', 'stop']);
    restore();
    restore();
    expect(input.raw).toEqual([true, false]);
    expect(input.flowing).toBe(false);
    input.emit('data', 'q');
    expect(seen).toEqual(['pause', 'stop']);
  });
});
