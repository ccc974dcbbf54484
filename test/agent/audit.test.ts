// The audit log detects every kind of tampering; the nonce store survives a restart.
import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { homePaths } from '../../src/agent/home.ts'
import { AuditLog, verifyAudit } from '../../src/agent/audit.ts'
import { FileNonceStore } from '../../src/agent/nonce-store.ts'
import { parsePeer } from '../../src/crypto/peer.ts'
import { makeParty } from '../helpers/parties.ts'

async function fiveEntries(): Promise<{ paths: ReturnType<typeof homePaths>; pub: Uint8Array }> {
  const me = await makeParty()
  const paths = homePaths(mkdtempSync(join(tmpdir(), 'mpc-audit-')))
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
  it('a clean log verifies, and feeds the policy history', async () => {
    const { paths, pub } = await fiveEntries()
    expect(verifyAudit(paths, pub)).toEqual({ ok: true, entries: 5, problems: [] })
    const me = await makeParty()
    const log = AuditLog.open(paths, me.signer)
    expect(log.certifiedRunsByBuyerSince('b', Date.now() - 60_000)).toBe(1)
    expect(log.sameTemplateSince('t1', 0)).toEqual([{ providers: ['x', 'y', 'z'] }])
  })

  it.each([
    ['an edited field', (ls: string[]) => { ls[1] = (ls[1] as string).replace('"accept":true', '"accept":false') }],
    ['a removed middle entry', (ls: string[]) => { ls.splice(2, 1) }],
    ['two swapped entries', (ls: string[]) => { const a = ls[1] as string; ls[1] = ls[2] as string; ls[2] = a }],
    ['an inserted entry', (ls: string[]) => { ls.splice(1, 0, ls[0] as string) }]
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
    expect(verifyAudit(paths, pub).problems.join()).toMatch(/head is missing/)
  })

  it('detects a log rewritten from scratch with a consistent chain signed by another key', async () => {
    const { paths, pub } = await fiveEntries()
    rmSync(paths.audit)
    rmSync(paths.auditHead)
    const forger = await makeParty()
    AuditLog.open(paths, forger.signer).append('outcome', { data: { forged: true } })
    expect(verifyAudit(paths, pub).problems.join()).toMatch(/not signed by this agent/)
  })
})

describe('nonce store', () => {
  it('survives a restart and prunes expired nonces', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mpc-nonce-')), 'nonces.json')
    const s = new FileNonceStore(path)
    s.add('aa', Date.now() + 60_000)
    s.add('old', Date.now() - 3 * 86_400_000)
    const again = new FileNonceStore(path)
    expect(again.has('aa')).toBe(true)
    again.add('bb', Date.now() + 60_000)
    expect(new FileNonceStore(path).has('old')).toBe(false)
    expect(new FileNonceStore(path).has('bb')).toBe(true)
  })
})
