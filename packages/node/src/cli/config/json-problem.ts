/** Where a JSON text first goes wrong, and how. Lines and columns count from 1. */
export interface JsonProblem {
  readonly line: number;
  readonly column: number;
  readonly problem: string;
}

class Stop extends Error {
  readonly at: number;
  readonly problem: string;
  constructor(at: number, problem: string) {
    super(problem);
    this.at = at;
    this.problem = problem;
  }
}

/**
 * Finds the first error in a JSON text that `JSON.parse` refused. V8's own
 * messages sometimes carry no position and sometimes quote the text around
 * the error, which must not be echoed (a secret may sit in it); this scanner
 * gives a position and a description, never the text.
 */
export function jsonProblem(text: string): JsonProblem {
  let at = 0;
  const fail = (problem: string, where = at): never => {
    throw new Stop(where, problem);
  };
  const space = (): void => {
    while (at < text.length && ' \t\r\n'.includes(text[at]!)) at++;
  };
  const end = (): boolean => at >= text.length;
  const string = (): void => {
    const start = at;
    at++; // the opening quote
    for (;;) {
      if (end()) fail('a string is not closed', start);
      const char = text.charCodeAt(at);
      if (char === 0x22) {
        at++;
        return;
      }
      if (char < 0x20) fail('a control character (such as a line break) inside a string');
      if (char === 0x5c) {
        const escape = text[at + 1];
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) fail('a bad \\u escape');
          at += 6;
        } else if (escape !== undefined && '"\\/bfnrt'.includes(escape)) {
          at += 2;
        } else {
          fail('a bad escape: a backslash must be followed by one of " \\ / b f n r t u');
        }
      } else {
        at++;
      }
    }
  };
  const number = (): void => {
    const pattern = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    pattern.lastIndex = at;
    if (!pattern.test(text)) fail('a malformed number');
    at = pattern.lastIndex;
  };
  const value = (): void => {
    space();
    if (end()) fail('the text ends where a value was expected');
    const char = text[at]!;
    if (char === '{') return object();
    if (char === '[') return array();
    if (char === '"') return string();
    if (char === '-' || (char >= '0' && char <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return;
      }
    }
    if (char === "'") fail('a string in single quotes (JSON needs double quotes)');
    fail('expected a value (a string in double quotes, a number, true, false, null, { or [)');
  };
  const object = (): void => {
    at++;
    space();
    if (text[at] === '}') {
      at++;
      return;
    }
    for (;;) {
      space();
      if (text[at] !== '"') {
        fail(
          text[at] === '}'
            ? "a comma before '}' (JSON allows no trailing comma)"
            : 'expected a property name in double quotes',
        );
      }
      string();
      space();
      if (text[at] !== ':') fail("expected ':' after a property name");
      at++;
      value();
      space();
      if (text[at] === ',') {
        at++;
        continue;
      }
      if (text[at] === '}') {
        at++;
        return;
      }
      fail(end() ? "the text ends before the object's '}'" : "expected ',' or '}' after a value");
    }
  };
  const array = (): void => {
    at++;
    space();
    if (text[at] === ']') {
      at++;
      return;
    }
    for (;;) {
      space();
      if (text[at] === ']') fail("a comma before ']' (JSON allows no trailing comma)");
      value();
      space();
      if (text[at] === ',') {
        at++;
        continue;
      }
      if (text[at] === ']') {
        at++;
        return;
      }
      fail(end() ? "the text ends before the array's ']'" : "expected ',' or ']' after a value");
    }
  };
  try {
    space();
    if (end()) fail('the file is empty');
    value();
    space();
    if (!end()) fail('more text after the JSON value');
    // Valid after all (the caller's parse failed for another reason): point at the start.
    return { line: 1, column: 1, problem: 'not valid JSON' };
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
    return { ...lineAndColumn(text, error.at), problem: error.problem };
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
