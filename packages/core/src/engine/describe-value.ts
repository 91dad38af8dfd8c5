/** A bad option as a TypeError shows it: its JSON for plain data, else its type or class. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return `a function ${value.name || '(anonymous)'}`;
  if (typeof value !== 'object') return JSON.stringify(value) ?? typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== 'Object'
    ? `a ${name}`
    : 'an object without the methods';
}
