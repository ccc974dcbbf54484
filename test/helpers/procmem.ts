// Search a live process's memory for byte patterns (root: /proc/<pid>/mem), without a core dump:
// every readable mapping (heap, V8 spaces, off-heap buffers, stacks) is read in chunks and searched.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'

/** For each pattern, whether it occurs anywhere in the readable memory of `pid`. */
export function memoryContains(pid: number, patterns: Buffer[]): boolean[] {
  const found = patterns.map(() => false)
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n')
  const fd = openSync(`/proc/${pid}/mem`, 'r')
  const CHUNK = 8 * 1024 * 1024
  const overlap = Math.max(...patterns.map((p) => p.length))
  const buf = Buffer.alloc(CHUNK + overlap)
  try {
    for (const line of maps) {
      const [range, perms, , , , path] = line.split(/\s+/)
      if (!range || !perms?.startsWith('r') || path === '[vvar]' || path === '[vsyscall]') continue
      const [a, b] = range.split('-').map((h) => Number.parseInt(h, 16)) as [number, number]
      for (let pos = a; pos < b; pos += CHUNK) {
        const len = Math.min(CHUNK + overlap, b - pos)
        let n = 0
        try {
          n = readSync(fd, buf, 0, len, pos)
        } catch {
          break // an unreadable mapping (guard pages)
        }
        const view = buf.subarray(0, n)
        patterns.forEach((p, i) => {
          if (!found[i] && view.indexOf(p) >= 0) found[i] = true
        })
      }
    }
  } finally {
    closeSync(fd)
  }
  return found
}
