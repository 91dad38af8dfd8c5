/** Edit distance (insertions, deletions, substitutions) between two short names. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = current;
  }
  return previous[b.length]!;
}

const folded = (name: string): string => name.toLowerCase().replace(/[-_]/g, '');

/**
 * The known name `given` most likely meant, or undefined. Case and the
 * spelling style (`retry-time`, `RETRY_TIME`, `retryTime`) are forgiven
 * first; then a typo of up to a third of the name, at most 3 edits.
 */
export function closestName(given: string, known: readonly string[]): string | undefined {
  const target = folded(given);
  const same = known.find((name) => folded(name) === target);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.max(1, Math.floor(target.length / 3)));
  for (const name of known) {
    const d = distance(target, folded(name));
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}
