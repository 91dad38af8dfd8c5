import { describe, expect, it } from 'vitest';
import { sampleSessions, streamedLine } from './demo-sample.ts';

describe('sampleSessions', () => {
  it('is the same for the same seed and differs for another', () => {
    const a = sampleSessions(50, 7);
    expect(sampleSessions(50, 7)).toEqual(a);
    expect(sampleSessions(50, 8).map((f) => f.key)).not.toEqual(a.map((f) => f.key));
  });

  it('writes the count asked, as nested JSONL session logs sorted by key', () => {
    const files = sampleSessions(120, 1);
    expect(files).toHaveLength(120);
    expect(new Set(files.map((f) => f.key)).size).toBe(120);
    expect(files.map((f) => f.key)).toEqual(files.map((f) => f.key).sort());
    for (const file of files) {
      expect(file.key).toMatch(/^[a-z-]+\/[a-z-]+\/2025-05-\d\d\/session-[0-9a-f]{12}\.jsonl$/);
      const lines = file.content.trimEnd().split('\n');
      const parsed = lines.map((line) => JSON.parse(line) as { type: string });
      expect(parsed[0]?.type).toBe('session_start');
      expect(parsed.some((entry) => entry.type === 'assistant')).toBe(true);
    }
  });

  it('makes nothing for 0 and refuses a bad count', () => {
    expect(sampleSessions(0, 1)).toEqual([]);
    expect(() => sampleSessions(-1, 1)).toThrow(/count must be an integer >= 0, got -1/);
  });
});

describe('streamedLine', () => {
  it('is one JSON line, different for every write', () => {
    const a = streamedLine('x.jsonl', 1, 0);
    const b = streamedLine('x.jsonl', 2, 0);
    expect(a).not.toBe(b);
    expect(a.endsWith('\n')).toBe(true);
    expect(JSON.parse(a)).toMatchObject({ type: 'assistant_delta', seq: 1 });
  });
});
