// "did you mean X?" for a misspelt name: the closest known name by edit distance, if it is close enough.

/** Levenshtein distance, case-insensitive (a column spelt in the wrong case is the commonest slip). */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j)
  for (let i = 1; i <= s.length; i++) {
    const cur = [i]
    for (let j = 1; j <= t.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (s[i - 1] === t[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[t.length] ?? 0
}

/** The known name closest to `name` (at most 2 edits, or a third of its length for long names; fewer than its length), or undefined. */
export function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestD = Math.max(1, Math.min(2, name.length - 1), Math.floor(name.length / 3)) + 1
  for (const k of known) {
    const d = editDistance(name, k)
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  return best
}

/** ': did you mean "X"?' or ''. */
export function didYouMean(name: string, known: Iterable<string>): string {
  const c = closest(name, known)
  return c === undefined ? '' : `: did you mean "${c}"?`
}
