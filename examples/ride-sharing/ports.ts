// Listen ports for agents on one machine (the example, the tests, the bench).
//
// A port picked now and bound later (`init --listen`, then `serve` seconds or minutes afterwards) must not be
// one the kernel can hand out in between. Binding port 0 and releasing it returns a port from the ephemeral
// range, which is exactly where every outgoing TCP connection takes its local port: on a busy machine (the
// tests run two files at once, every agent dialling the others) one of those connections can sit on the
// picked port when `serve` starts, and serve then fails with "port in use". So: pick below the ephemeral range
// (Linux: /proc/sys/net/ipv4/ip_local_port_range), where the kernel never allocates on its own, check the port
// is free by binding it, and never hand the same port out twice in one process. Under vitest each worker
// (VITEST_POOL_ID, inherited by every process a test spawns) draws from its own slice, so two test files
// running at once never pick the same port.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

const FLOOR = 10_000
const SLICE = 2_000
const given = new Set<number>()

/** The lowest port of the kernel's ephemeral range (32768 where it cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > 0 ? low : 32_768
  } catch {
    return 32_768
  }
}

/** The [lo, hi) range this process draws from. */
function range(): [number, number] {
  const top = ephemeralLow()
  if (top - FLOOR < SLICE) return [FLOOR, FLOOR + SLICE] // an unusual kernel setting: stay clear of well-known ports anyway
  const pool = Number(process.env.VITEST_POOL_ID)
  const slices = Math.floor((top - FLOOR) / SLICE)
  if (!Number.isInteger(pool) || pool < 1) return [FLOOR, top]
  const lo = FLOOR + ((pool - 1) % slices) * SLICE
  return [lo, lo + SLICE]
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** A TCP port on 127.0.0.1 that is free now and outside the kernel's ephemeral range. */
export async function listenPort(): Promise<number> {
  const [lo, hi] = range()
  for (let i = 0; i < 200; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo))
    if (given.has(port)) continue
    given.add(port)
    if (await bindable(port)) return port
  }
  throw new Error(`no free port in ${lo}-${hi - 1} on 127.0.0.1 after 200 tries`)
}
