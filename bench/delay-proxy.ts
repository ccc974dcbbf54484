// A userspace delay line for the network bench (bench/netem.ts): this kernel has no netem, so the
// round trip is added here. Run inside a party's network namespace, it listens on the party's public
// address and forwards every connection to the party's agent on 127.0.0.1, holding each chunk read
// in either direction for `delay` ms (RTT/2) before writing it on: every TCP connection between two
// parties passes exactly one such proxy (the listener's), so its round trip grows by 2 × delay = RTT.
// Bandwidth is not shaped here (htb on the namespaces' links does that) and nothing is dropped or
// reordered; chunks keep their order, each is released at (its arrival + delay).
// What it does not model: TCP's slow start over a long path (the proxy's two TCP legs each have a
// sub-millisecond RTT, so a fresh connection is not window-limited for its first round trips).
//
// Also the link checks bench/netem.ts runs before its rows (`echo`, `ping`, `bulk`): see calibrate().
//
//   node bench/delay-proxy.ts proxy <listen host:port> <target host:port> <delay ms>   prints "ready"
//   node bench/delay-proxy.ts echo <listen host:port>    echoes every byte; counts bulk bytes   prints "ready"
//   node bench/delay-proxy.ts ping <host:port> <count>   1-byte round trips: prints JSON {rtt_ms: [...]}
//   node bench/delay-proxy.ts bulk <host:port> <bytes>   sends bytes, waits for the byte count: prints JSON {seconds}
import { connect, createServer, type Socket } from 'node:net'

const hostPort = (s: string): { host: string; port: number } => {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
}

/** Copy `from` → `to`, each chunk released `ms` after it was read; `end` follows the last chunk. */
function delayed(from: Socket, to: Socket, ms: number): void {
  const queue: Array<{ due: number; chunk: Buffer | null }> = []
  let timer: NodeJS.Timeout | null = null
  const pump = (): void => {
    timer = null
    const now = performance.now()
    while (queue.length && (queue[0] as { due: number }).due <= now + 0.5) {
      const { chunk } = queue.shift() as { chunk: Buffer | null }
      if (chunk === null) to.end()
      else if (!to.destroyed) to.write(chunk)
    }
    if (queue.length) timer = setTimeout(pump, Math.max(0, (queue[0] as { due: number }).due - performance.now()))
  }
  const push = (chunk: Buffer | null): void => {
    queue.push({ due: performance.now() + ms, chunk })
    if (!timer) timer = setTimeout(pump, ms)
  }
  from.on('data', (c: Buffer) => push(c))
  from.on('end', () => push(null))
  from.on('error', () => to.destroy())
  from.on('close', () => {
    // a reset (not a clean end) propagates after the data already in flight
    if (!from.readableEnded) setTimeout(() => to.destroy(), ms)
  })
}

const [mode, a, b, c] = process.argv.slice(2)

if (mode === 'proxy') {
  const listen = hostPort(a as string)
  const target = hostPort(b as string)
  const ms = Number(c)
  const server = createServer({ noDelay: true, allowHalfOpen: true }, (down) => {
    const up = connect({ ...target, noDelay: true, allowHalfOpen: true })
    delayed(down, up, ms)
    delayed(up, down, ms)
  })
  server.listen(listen.port, listen.host, () => process.stdout.write('ready\n'))
} else if (mode === 'echo') {
  const listen = hostPort(a as string)
  // first byte 'p': echo every byte (ping); 'b': count the rest and answer the count as 8 bytes (bulk)
  createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
    let kind: number | null = null
    let n = 0
    s.on('data', (d: Buffer) => {
      if (kind === null) kind = d[0] as number
      if (kind === 0x70) s.write(d)
      else n += d.length
    })
    s.on('end', () => {
      if (kind === 0x62) {
        const out = Buffer.alloc(8)
        out.writeBigUInt64LE(BigInt(n - 1))
        s.end(out)
      } else s.end()
    })
    s.on('error', () => {})
  }).listen(listen.port, listen.host, () => process.stdout.write('ready\n'))
} else if (mode === 'ping') {
  const to = hostPort(a as string)
  const count = Number(b)
  const s = connect({ ...to, noDelay: true, allowHalfOpen: true })
  const rtts: number[] = []
  let t = 0
  const next = (): void => {
    t = performance.now()
    s.write('p')
  }
  s.on('connect', next)
  s.on('data', () => {
    rtts.push(performance.now() - t)
    if (rtts.length < count) next()
    else {
      process.stdout.write(JSON.stringify({ rtt_ms: rtts }) + '\n')
      s.destroy()
    }
  })
} else if (mode === 'bulk') {
  const to = hostPort(a as string)
  const bytes = Number(b)
  const s = connect({ ...to, noDelay: true, allowHalfOpen: true })
  const block = Buffer.alloc(1 << 16, 7)
  let t = 0
  s.on('connect', () => {
    t = performance.now()
    s.write('b')
    let left = bytes
    const write = (): void => {
      while (left > 0) {
        const n = Math.min(left, block.length)
        left -= n
        if (!s.write(n === block.length ? block : block.subarray(0, n))) return void s.once('drain', write)
      }
      s.end()
    }
    write()
  })
  let got = Buffer.alloc(0)
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])))
  s.on('end', () => {
    const n = got.length >= 8 ? Number(got.readBigUInt64LE(0)) : -1
    process.stdout.write(JSON.stringify({ bytes: n, seconds: (performance.now() - t) / 1000 }) + '\n')
  })
} else {
  process.stderr.write('usage: delay-proxy.ts proxy|echo|ping|bulk ...\n')
  process.exit(2)
}
