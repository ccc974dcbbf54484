// A NAT lab (issue 18): a "public" segment (198.18.0.0/24, a bridge in its own namespace) with the
// relay and public hosts, and private sites each behind its own NAT router namespace
// (iptables MASQUERADE; `symmetric` adds --random-fully). A public host has no route into any
// private network: a private host can only dial out. All namespaces are created and removed here.
import { execFileSync, spawnSync } from 'node:child_process'

export interface LabHost {
  ns: string
  ip: string
  /** The veth end in the public bridge namespace carrying this host's (or its router's) traffic. */
  bridgePort: string
}

export interface NatLab {
  /** hosts on the public segment, in the order asked for */
  public: LabHost[]
  /** hosts each behind its own NAT, in the order asked for */
  private: LabHost[]
  cut(h: LabHost): void
  restore(h: LabHost): void
  teardown(): void
}

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
}
const ip = (...a: string[]): void => sh('ip', a)

/** Why the NAT lab cannot run here, or null. Under CI=true a missing tool is a failure, not a skip. */
export function natLabUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  if (spawnSync('iptables', ['--version']).status !== 0) return 'iptables is not installed (apt-get install iptables; .ci/run installs it)'
  return null
}

export function createNatLab(nPublic: number, nat: Array<{ symmetric?: boolean }>): NatLab {
  const tag = `n${process.pid % 100000}`
  const br = `${tag}br`
  const made: string[] = [br]
  const pub: LabHost[] = []
  const priv: LabHost[] = []
  let next = 2
  const teardown = (): void => {
    for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns])
  }
  try {
    ip('netns', 'add', br)
    ip('-n', br, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', br, 'link', 'set', 'br0', 'up')
    const attach = (ns: string, i: number): { addr: string; port: string; dev: string } => {
      const dev = `${tag}i${i}`
      const port = `${tag}p${i}`
      const addr = `198.18.0.${next++}`
      ip('link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', br)
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev)
      ip('-n', ns, 'link', 'set', dev, 'up')
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', br, 'link', 'set', port, 'master', 'br0')
      ip('-n', br, 'link', 'set', port, 'up')
      return { addr, port, dev }
    }
    let i = 0
    for (let k = 0; k < nPublic; k++, i++) {
      const ns = `${tag}h${i}`
      ip('netns', 'add', ns)
      made.push(ns)
      const a = attach(ns, i)
      pub.push({ ns, ip: a.addr, bridgePort: a.port })
    }
    nat.forEach((site, k) => {
      const router = `${tag}r${k}`
      const host = `${tag}h${i}`
      ip('netns', 'add', router)
      made.push(router)
      ip('netns', 'add', host)
      made.push(host)
      const up = attach(router, i)
      i++
      // the private side: 10.250.<k>.0/24, the router at .1, the host at .2
      const inR = `${tag}l${k}`
      const inH = `${tag}m${k}`
      ip('link', 'add', inR, 'netns', router, 'type', 'veth', 'peer', 'name', inH, 'netns', host)
      ip('-n', router, 'addr', 'add', `10.250.${k}.1/24`, 'dev', inR)
      ip('-n', router, 'link', 'set', inR, 'up')
      ip('-n', host, 'addr', 'add', `10.250.${k}.2/24`, 'dev', inH)
      ip('-n', host, 'link', 'set', inH, 'up')
      ip('-n', host, 'link', 'set', 'lo', 'up')
      ip('-n', host, 'route', 'add', 'default', 'via', `10.250.${k}.1`)
      sh('ip', ['netns', 'exec', router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
      sh('ip', ['netns', 'exec', router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', up.dev, '-j', 'MASQUERADE', ...(site.symmetric ? ['--random-fully'] : [])])
      // a NAT admits replies only: nothing from outside starts a connection into the site
      sh('ip', ['netns', 'exec', router, 'iptables', '-A', 'FORWARD', '-i', up.dev, '-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP'])
      priv.push({ ns: host, ip: `10.250.${k}.2`, bridgePort: up.port })
    })
  } catch (e) {
    teardown()
    throw e
  }
  return {
    public: pub,
    private: priv,
    cut: (h) => ip('-n', br, 'link', 'set', h.bridgePort, 'down'),
    restore: (h) => ip('-n', br, 'link', 'set', h.bridgePort, 'up'),
    teardown
  }
}
