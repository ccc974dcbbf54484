// Separate network hosts on one machine: Linux network namespaces joined by veth pairs to a
// bridge that lives in its own namespace. Addresses are 10.231.<net>.x, inside namespaces this
// test created; nothing is routed outside them. Removed on teardown.
import { execFileSync, spawnSync } from 'node:child_process'

export interface NetnsHost {
  ns: string
  ip: string
  /** The veth end inside the bridge namespace: bring it down to cut this host's link. */
  bridgePort: string
}

export interface NetnsLab {
  hosts: NetnsHost[]
  cut(host: NetnsHost): void
  restore(host: NetnsHost): void
  teardown(): void
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Why namespaces cannot be used here, or null when they can. Under CI=true always null: the tests then fail, never skip. */
export function netnsUnavailable(): string | null {
  if (process.env.CI === 'true') return null
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const probe = `mpcprobe${process.pid}`
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.error?.message || '').trim()}`
  spawnSync('ip', ['netns', 'del', probe])
  return null
}

export function createLab(n: number, net = 231): NetnsLab {
  const tag = `m${process.pid % 100000}`
  const br = `${tag}br`
  const hosts: NetnsHost[] = []
  ip('netns', 'add', br)
  try {
    ip('-n', br, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', br, 'link', 'set', 'br0', 'up')
    for (let i = 0; i < n; i++) {
      const ns = `${tag}h${i}`
      const inside = `${tag}i${i}`
      const port = `${tag}p${i}`
      ip('netns', 'add', ns)
      ip('link', 'add', inside, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', br)
      const addr = `10.${net}.0.${i + 2}`
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', inside)
      ip('-n', ns, 'link', 'set', inside, 'up')
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', br, 'link', 'set', port, 'master', 'br0')
      ip('-n', br, 'link', 'set', port, 'up')
      hosts.push({ ns, ip: addr, bridgePort: port })
    }
  } catch (e) {
    teardownAll(br, hosts.map((h) => h.ns).concat(Array.from({ length: n }, (_, i) => `${tag}h${i}`)))
    throw e
  }
  return {
    hosts,
    cut: (h) => ip('-n', br, 'link', 'set', h.bridgePort, 'down'),
    restore: (h) => ip('-n', br, 'link', 'set', h.bridgePort, 'up'),
    teardown: () => teardownAll(br, hosts.map((h) => h.ns))
  }
}

function teardownAll(br: string, nss: string[]): void {
  for (const ns of [...new Set(nss)]) spawnSync('ip', ['netns', 'del', ns])
  spawnSync('ip', ['netns', 'del', br])
}
