import { describe, expect, it } from 'vitest';
import { Emitter } from './emitter.ts';

interface Events {
  sent: { key: string };
  idle: undefined;
}

describe('Emitter', () => {
  it('delivers typed payloads and on() returns the unsubscribe function', () => {
    const emitter = new Emitter<Events>();
    const keys: string[] = [];
    const off = emitter.on('sent', ({ key }) => keys.push(key));
    emitter.emit('sent', { key: 'a' });
    off();
    emitter.emit('sent', { key: 'b' });
    expect(keys).toEqual(['a']);
    expect(emitter.listenerCount('sent')).toBe(0);
  });

  it('the same function added twice is two listeners, removed one at a time', () => {
    const emitter = new Emitter<Events>();
    let calls = 0;
    const listener = (): void => void calls++;
    const off1 = emitter.on('idle', listener);
    emitter.on('idle', listener);
    off1();
    emitter.emit('idle', undefined);
    expect(calls).toBe(1);
  });

  it('once() fires one time', () => {
    const emitter = new Emitter<Events>();
    let calls = 0;
    emitter.once('idle', () => calls++);
    emitter.emit('idle', undefined);
    emitter.emit('idle', undefined);
    expect(calls).toBe(1);
  });

  it('a throwing listener is reported and does not stop the others', () => {
    const reported: string[] = [];
    const emitter = new Emitter<Events>({ onListenerError: (_e, event) => reported.push(event) });
    let reached = false;
    emitter.on('idle', () => {
      throw new Error('panel bug');
    });
    emitter.on('idle', () => (reached = true));
    emitter.emit('idle', undefined);
    expect(reached).toBe(true);
    expect(reported).toEqual(['idle']);
  });
});
