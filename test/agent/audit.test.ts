// The audit log detects every kind of tampering, serialises concurrent appends across processes,
// answers the policy's history queries, and never stores vectors.
import { describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { homePaths, type HomePaths } from '../../src/agent/home.ts'
import { AuditLog, verifyAudit } from '../../src/agent/audit.ts'
import { parsePeer } from '../../src/crypto/peer.ts'
import { signerFromSeed } from '../../src/crypto/sign.ts'
import { makeParty } from '../helpers/parties.ts'

const freshHome = (): HomePaths => homePaths(mkdtempSync(join(tmpdir(), 'mpc-audit-')))

async function fiveEntries(): Promise<{ paths: HomePaths; pub: Uint8Array }> {
  const me = await makeParty()
  const paths = freshHome()
  const log = AuditLog.open(paths, me.signer)
  log.append('proposal', { proposal: 'aa'.repeat(32), data: { buyer: 'b', query_id: 'q' } })
  log.append('decision', { proposal: 'aa'.repeat(32), data: { accept: true, reasons: [] } })
  log.append('certificate', { session: 'bb'.repeat(32), data: { buyer: 'b', providers: ['x', 'y', 'z'], template: 't1' } })
  log.append('receipt', { session: 'bb'.repeat(32), data: { ok: true } })
  log.append('outcome', { session: 'bb'.repeat(32), data: { cells: 3 } })
  return { paths, pub: parsePeer(me.peerId).publicKey }
}

const lines = (p: string): string[] => readFileSync(p, 'utf8').trim().split('\n')
const write = (p: string, ls: string[]): void => writeFileSync(p, ls.join('\n') + '\n')

describe('audit log', () => {
  it('a clean log of 5 entries verifies and chains from 64 zeros', async () => {
    const { paths, pub } = await fiveEntries()
    expect(verifyAudit(paths, pub)).toEqual({ ok: true, entries: 5, problems: [] })
    const first = JSON.parse(lines(paths.audit)[0] as string) as { prev: string; seq: number }
    expect(first).toMatchObject({ seq: 1, prev: '0'.repeat(64) })
    const head = JSON.parse(readFileSync(paths.auditHead, 'utf8')) as { seq: number }
    expect(head.seq).toBe(5)
  })

  it('answers the policy history queries from certificate entries only, within the window', async () => {
    const { paths } = await fiveEntries()
    const me = await makeParty()
    const log = AuditLog.open(paths, me.signer)
    log.append('certificate', { session: 'cc'.repeat(32), data: { buyer: 'other', providers: ['x', 'y'], template: 't1' } })
    log.append('proposal', { data: { buyer: 'b', template: 't1', providers: ['q'] } })
    expect(log.certifiedRunsByBuyerSince('b', Date.now() - 60_000)).toBe(1)
    expect(log.certifiedRunsByBuyerSince('other', 0)).toBe(1)
    expect(log.certifiedRunsByBuyerSince('b', Date.now() + 60_000)).toBe(0)
  })

  it('a second handle sees entries appended through the first, and keeps the chain', async () => {
    const me = await makeParty()
    const paths = freshHome()
    const a = AuditLog.open(paths, me.signer)
    const b = AuditLog.open(paths, me.signer)
    a.append('proposal', { data: { n: 1 } })
    b.append('decision', { data: { n: 2 } })
    a.append('outcome', { data: { n: 3 } })
    expect(b.entries().map((e) => e.seq)).toEqual([1, 2, 3])
    expect(verifyAudit(paths, parsePeer(me.peerId).publicKey).ok).toBe(true)
  })

  it('opening reads only the end of the log: history it never parses (here: garbage) does not slow or break a run', async () => {
    const { paths, pub } = await fiveEntries()
    const me = await makeParty()
    // 3 MB of history nobody parses at open: the handle reads backwards from the end to the last line only
    const ls = lines(paths.audit)
    const junk = 'x'.repeat(1000)
    writeFileSync(paths.audit, Array.from({ length: 3000 }, () => junk).join('\n') + '\n' + ls.join('\n') + '\n')
    const log = AuditLog.open(paths, me.signer)
    const e = log.append('outcome', { data: { n: 6 } })
    expect(e.seq).toBe(6)
    // it chains to the last real entry (verify then flags only the junk, which it reads)
    const { problems } = verifyAudit(paths, pub)
    expect(problems).not.toContain('line 3006: does not chain to the previous entry (edited, removed or reordered)')
    expect(problems).toContain('line 3005: sequence number 5 (entries removed, inserted or reordered)') // the check would fire
    expect(problems.some((p) => p.startsWith('line 1: not JSON'))).toBe(true)
    expect(JSON.parse(lines(paths.audit).at(-1) as string)).toMatchObject({ seq: 6 })
  })

  it('a last entry longer than one read step, and appends from two handles, keep the chain', async () => {
    const { paths, pub } = await fiveEntries()
    const me = await makeParty()
    const a = AuditLog.open(paths, me.signer)
    a.append('outcome', { data: { note: 'y'.repeat(200_000) } }) // > 64 KiB: found by reading back in steps
    const b = AuditLog.open(paths, me.signer)
    expect(b.append('receipt', { data: { n: 7 } }).seq).toBe(7)
    expect(a.append('outcome', { data: { n: 8 } }).seq).toBe(8)
    writeFileSync(paths.audit, readFileSync(paths.audit, 'utf8') + '\n') // a stray empty line at the end is skipped
    expect(AuditLog.open(paths, me.signer).append('outcome', { data: { n: 9 } }).seq).toBe(9)
    expect(a.entries().map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    const v = verifyAudit(paths, pub)
    expect(v.entries).toBe(9)
  })

  it('redacts vectors and binary, keeps short arrays', async () => {
    const me = await makeParty()
    const paths = freshHome()
    const log = AuditLog.open(paths, me.signer)
    const e = log.append('outcome', { data: { vector: Array.from({ length: 100 }, (_, i) => i), raw: new Uint8Array(9), big: 5n, top: [1, 2, 3] } })
    expect(e.data).toEqual({ vector: { redacted: 'vector', length: 100 }, raw: { redacted: 'binary', length: 9 }, big: '5', top: [1, 2, 3] })
    expect(readFileSync(paths.audit, 'utf8')).not.toContain('99')
  })

  it.each([
    ['an edited field', (ls: string[]) => { ls[1] = (ls[1] as string).replace('"accept":true', '"accept":false') }],
    ['an edited last entry', (ls: string[]) => { ls[4] = (ls[4] as string).replace('"cells":3', '"cells":4') }],
    ['a removed middle entry', (ls: string[]) => { ls.splice(2, 1) }],
    ['two swapped entries', (ls: string[]) => { const a = ls[1] as string; ls[1] = ls[2] as string; ls[2] = a }],
    ['an inserted entry', (ls: string[]) => { ls.splice(1, 0, ls[0] as string) }],
    ['a garbage line', (ls: string[]) => { ls[2] = 'not json' }]
  ])('detects %s', async (_n, f) => {
    const { paths, pub } = await fiveEntries()
    const ls = lines(paths.audit)
    f(ls)
    write(paths.audit, ls)
    const v = verifyAudit(paths, pub)
    expect(v.ok).toBe(false)
    expect(v.problems.length).toBeGreaterThan(0)
  })

  it('detects a truncated tail (last entry dropped, head left)', async () => {
    const { paths, pub } = await fiveEntries()
    write(paths.audit, lines(paths.audit).slice(0, 4))
    expect(verifyAudit(paths, pub).problems.join()).toMatch(/truncated/)
  })

  it('detects a truncated tail with the head removed too', async () => {
    const { paths, pub } = await fiveEntries()
    write(paths.audit, lines(paths.audit).slice(0, 4))
    rmSync(paths.auditHead)
    const v = verifyAudit(paths, pub)
    expect(v.ok).toBe(false)
    expect(v.problems.join()).toMatch(/head .* is missing/)
  })

  it('detects a log rewritten from scratch with a consistent chain signed by another key', async () => {
    const { paths, pub } = await fiveEntries()
    rmSync(paths.audit)
    rmSync(paths.auditHead)
    const forger = await makeParty()
    const log = AuditLog.open(paths, forger.signer)
    for (let i = 0; i < 5; i++) log.append('outcome', { data: { forged: i } })
    expect(verifyAudit(paths, parsePeer(forger.peerId).publicKey).ok).toBe(true) // self-consistent…
    const v = verifyAudit(paths, pub) // …but not ours
    expect(v.ok).toBe(false)
    expect(v.problems.join()).toMatch(/not signed by this agent/)
  })

  it('detects a corrupt head file', async () => {
    const { paths, pub } = await fiveEntries()
    writeFileSync(paths.auditHead, '{"seq":5')
    expect(verifyAudit(paths, pub).problems.join()).toMatch(/unreadable/)
  })

  it('takes over a lock left by a dead process', async () => {
    const me = await makeParty()
    const paths = freshHome()
    const dead = spawn(process.execPath, ['-e', '0'])
    const pid = dead.pid as number
    await new Promise((r) => dead.on('exit', r))
    writeFileSync(`${paths.audit}.lock`, JSON.stringify({ pid, since: new Date().toISOString() }))
    AuditLog.open(paths, me.signer).append('outcome', { data: null })
    expect(existsSync(`${paths.audit}.lock`)).toBe(false)
    expect(verifyAudit(paths, parsePeer(me.peerId).publicKey).entries).toBe(1)
  })

  it('an empty home verifies as an empty log', () => {
    const paths = freshHome()
    expect(verifyAudit(paths, new Uint8Array(32))).toEqual({ ok: true, entries: 0, problems: [] })
  })

  it('serialises appends from concurrent processes (lock file)', async () => {
    const paths = freshHome()
    const seed = randomBytes(32)
    const root = resolve(import.meta.dirname, '../..')
    const script = `
      import { homePaths } from ${JSON.stringify(join(root, 'src/agent/home.ts'))}
      import { AuditLog } from ${JSON.stringify(join(root, 'src/agent/audit.ts'))}
      import { signerFromSeed } from ${JSON.stringify(join(root, 'src/crypto/sign.ts'))}
      const log = AuditLog.open(homePaths(process.env.DIR), signerFromSeed('x', Buffer.from(process.env.SEED, 'hex')))
      while (Date.now() < Number(process.env.START)) {} // start together, so appends interleave
      for (let i = 0; i < 150; i++) log.append('outcome', { data: { pid: process.pid, i } })
    `
    const start = Date.now() + 1500
    const run = (): Promise<number> => new Promise((res, rej) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, DIR: paths.dir, SEED: seed.toString('hex'), START: String(start) }, stdio: ['ignore', 'ignore', 'inherit']
      })
      p.on('error', rej)
      p.on('exit', (code) => res(code ?? -1))
    })
    expect(await Promise.all([run(), run(), run()])).toEqual([0, 0, 0])
    const v = verifyAudit(paths, ed25519.getPublicKey(seed))
    expect(v).toEqual({ ok: true, entries: 450, problems: [] })
    // the same signer in this process continues the chain
    AuditLog.open(paths, signerFromSeed('x', seed)).append('abort', { data: { reason: 'test' } })
    expect(verifyAudit(paths, ed25519.getPublicKey(seed)).entries).toBe(451)
  }, 20_000)
})
