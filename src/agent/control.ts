// The control socket of a running `serve` (<home>/control.sock, mode 0600): headless operators
// approve or reject proposals waiting for manual approval (`mpc-agent approve|reject ID`).
// Protocol: one JSON line request {cmd: 'list'|'approve'|'reject', id?}, one JSON line reply.
import { createServer, createConnection, type Server } from 'node:net'
import { chmodSync, rmSync } from 'node:fs'
import { ConfigError } from './errors.ts'

export interface PendingApproval {
  id: string
  summary: Record<string, unknown>
  decide(approve: boolean): void
}

export class ApprovalQueue {
  private readonly pending = new Map<string, PendingApproval>()
  private readonly listeners = new Set<(p: PendingApproval) => void>()

  /** Wait for an operator's decision on `id`; false (reject) when the signal fires first. */
  wait(id: string, summary: Record<string, unknown>, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (v: boolean): void => {
        if (!this.pending.delete(id)) return
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      }
      const onAbort = (): void => done(false)
      const p: PendingApproval = { id, summary, decide: done }
      this.pending.set(id, p)
      signal.addEventListener('abort', onAbort, { once: true })
      for (const l of this.listeners) l(p)
    })
  }

  decide(id: string, approve: boolean): boolean {
    const p = this.pending.get(id) ?? [...this.pending.values()].find((x) => x.id.startsWith(id) && id.length >= 8)
    if (!p) return false
    p.decide(approve)
    return true
  }

  list(): Array<{ id: string; summary: Record<string, unknown> }> {
    return [...this.pending.values()].map(({ id, summary }) => ({ id, summary }))
  }

  onPending(l: (p: PendingApproval) => void): void {
    this.listeners.add(l)
  }
}

export async function startControlServer(path: string, queue: ApprovalQueue): Promise<Server> {
  rmSync(path, { force: true })
  const server = createServer((sock) => {
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => {
      buf += d
      if (buf.length > 64 * 1024) return sock.destroy()
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      let reply: unknown
      try {
        const req = JSON.parse(buf.slice(0, nl)) as { cmd?: string; id?: string }
        if (req.cmd === 'list') reply = { ok: true, pending: queue.list() }
        else if ((req.cmd === 'approve' || req.cmd === 'reject') && typeof req.id === 'string') {
          const ok = queue.decide(req.id, req.cmd === 'approve')
          reply = ok ? { ok } : { ok, message: `no proposal ${req.id} is waiting for approval` }
        } else reply = { ok: false, message: 'unknown command' }
      } catch {
        reply = { ok: false, message: 'malformed request' }
      }
      sock.end(JSON.stringify(reply) + '\n')
    })
    sock.on('error', () => {})
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    const old = process.umask(0o177)
    server.listen(path, () => {
      process.umask(old)
      resolve()
    })
  })
  chmodSync(path, 0o600)
  return server
}

export function controlRequest(path: string, req: Record<string, unknown>): Promise<{ ok: boolean; message?: string; pending?: unknown[] }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path)
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'))
    sock.on('data', (d: string) => (buf += d))
    sock.on('end', () => {
      try {
        resolve(JSON.parse(buf) as { ok: boolean; message?: string })
      } catch {
        reject(new ConfigError(`unexpected reply on ${path}`))
      }
    })
    sock.on('error', () => reject(new ConfigError(`no running \`mpc-agent serve\` at ${path}: start it first`)))
  })
}
