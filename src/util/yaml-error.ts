// One-line messages for YAML parse errors, shared by config.yaml, policy.yaml, query files and peer entries.

/**
 * One line for a YAML parse error, with the offending line: the yaml package's message ends with a
 * code frame ("at line 3, column 5:\n\n  peers: [\n  ^"); keep its first line and the line the caret points at.
 */
export function yamlErrorLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e)
  const lines = msg.split('\n')
  // the frame may show the line before too; the caret sits under the line the position names
  const caret = lines.findIndex((l, i) => i > 0 && /^\s*\^+\s*$/.test(l))
  const src = caret > 1 ? lines[caret - 1] : lines.slice(1).find((l) => l.trim() !== '')
  const head = (lines[0] ?? msg).replace(/:\s*$/, '')
  return src ? `${head}: ${src.trim()}` : head
}
