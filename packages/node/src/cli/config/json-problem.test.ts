import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jsonProblem } from './json-problem.ts';

const fails = (text: string): boolean => {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
};

describe('jsonProblem', () => {
  it.each([
    ['', 1, 1, 'the file is empty'],
    ['{"a": 1,}', 1, 9, "a comma before '}' (JSON allows no trailing comma)"],
    ['[1, 2,]', 1, 7, "a comma before ']' (JSON allows no trailing comma)"],
    ['{"a" 1}', 1, 6, "expected ':' after a property name"],
    ["{'a': 1}", 1, 2, 'expected a property name in double quotes'],
    ['{"a": \'x\'}', 1, 7, 'a string in single quotes (JSON needs double quotes)'],
    [
      '{"a": tru}',
      1,
      7,
      'expected a value (a string in double quotes, a number, true, false, null, { or [)',
    ],
    ['{"a": 1}}', 1, 9, 'more text after the JSON value'],
    ['{\n"a": 01}', 2, 7, "expected ',' or '}' after a value"],
    [
      '{"a": "\\x"}',
      1,
      8,
      'a bad escape: a backslash must be followed by one of " \\ / b f n r t u',
    ],
    ['{"a": "line\nbreak"}', 1, 12, 'a control character (such as a line break) inside a string'],
    ['{"a": [1, 2', 1, 12, "the text ends before the array's ']'"],
    ['{"a": -}', 1, 7, 'a malformed number'],
  ])('%j: line %i column %i: %s', (text, line, column, problem) => {
    expect(fails(text)).toBe(true);
    expect(jsonProblem(text)).toEqual({ line, column, problem });
  });

  it('finds a problem in every text JSON.parse refuses, and none in one it takes', () => {
    const pieces = fc.constantFrom(
      '{',
      '}',
      '[',
      ']',
      '"',
      ':',
      ',',
      ' ',
      '\n',
      'a',
      '1',
      '-',
      '.',
      'e',
      'true',
      'null',
      '\\',
      '\\u00e9',
      '"k"',
    );
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 14 }), (parts) => {
        const text = parts.join('');
        const problem = jsonProblem(text).problem;
        expect(problem === 'not valid JSON').toBe(!fails(text));
      }),
      { numRuns: 3000, seed: 42 },
    );
  });
});
