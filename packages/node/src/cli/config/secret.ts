const MASK = '********';

/**
 * A value that must never be printed. Whatever turns it into text by
 * accident (a template string, JSON.stringify, console.log, a test diff)
 * gets the mask; only reveal() gives the value, at the one place that sends it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Secret(${MASK})`;
  }
}

/** What `upsync config` shows for a set secret: a fixed mask that tells nothing of the length. */
export const SECRET_MASK = MASK;
