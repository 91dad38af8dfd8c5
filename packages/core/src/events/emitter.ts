/** Maps each event name to the type of its one payload (an interface works). */
export type EventMap = object;

export type Listener<T> = (payload: T) => void;

export interface EmitterOptions {
  /**
   * Called when a listener throws. A listener's bug must not stop the component
   * that emits (a sync must not fail because a progress panel threw), so errors
   * are reported here and the other listeners still run. Default: console.error.
   */
  onListenerError?: (error: unknown, event: string) => void;
}

/**
 * Typed events. `on()` returns the function that unsubscribes, so callers can
 * collect disposers instead of keeping listener references.
 */
export class Emitter<Events extends EventMap> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #onListenerError: (error: unknown, event: string) => void;

  constructor(options: EmitterOptions = {}) {
    this.#onListenerError =
      options.onListenerError ??
      ((error, event) => console.error(`upsync: a listener of "${event}" threw`, error));
  }

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    // Wrap so the same function can be added twice and removed independently.
    const entry: Listener<Events[K]> = (payload) => listener(payload);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (error) {
        this.#onListenerError(error, String(event));
      }
    }
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  removeAllListeners(): void {
    this.#listeners.clear();
  }
}
