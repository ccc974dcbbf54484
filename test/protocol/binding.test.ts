// masked-sum.md §5: every signed masked-sum message names its session, its sender and its recipient
// under a label of its own type, and a receiver checks all of them (`signedBy`). So a signed message
// cannot be replayed into another run, shown as sent to another peer, passed off as another party's,
// or re-used as a message of another type (SECURITY.md "Every signed masked-sum message…").
import { beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { toHex } from '../../src/crypto/bytes.ts'
import { LABEL, signBody, signedBy } from '../../src/protocol/masked-sum-messages.ts'
import { makeParty, type Party } from '../helpers/parties.ts'

const hex = (n: number): string => toHex(new Uint8Array(randomBytes(n)))

describe('signed masked-sum messages are bound to session, sender, recipient and type', () => {
  let a: Party, b: Party, c: Party
  beforeAll(async () => {
    [a, b, c] = await Promise.all([makeParty(), makeParty(), makeParty()])
  })
  const session = hex(32)
  const other = hex(32)
  // one body per signed type, as the runners build them (sender field `from`, or `provider` for DONE and REVEAL)
  const kinds = [
    { label: LABEL.start, sender: 'from', body: { v: 4, type: 'start', session } },
    { label: LABEL.xcheck, sender: 'from', body: { v: 4, type: 'xcheck', session, proposal: hex(32), confirm: hex(32) } },
    { label: LABEL.xcert, sender: 'from', body: { v: 4, type: 'xcert', session, xcheck: hex(32), certificate: { any: 'certificate' } } },
    { label: LABEL.done, sender: 'provider', body: { v: 4, type: 'done', session, length: 10, chunks: 1, hash: hex(32) } },
    { label: LABEL.inclusion, sender: 'from', body: { v: 4, type: 'inclusion', session, entries: [] } },
    { label: LABEL.reveal, sender: 'provider', body: { v: 4, type: 'reveal', session, inclusion: hex(32), seed: hex(32) } },
    { label: LABEL.receipt, sender: 'from', body: { v: 4, type: 'receipt', session, commitment: hex(32), cells: 10 } }
  ] as const

  for (const k of kinds) {
    it(`${k.body.type}: verifies only as sent`, () => {
      const m = signBody(a.signer, k.label, { ...k.body, [k.sender]: a.peerId, to: b.peerId })
      const check = (x: object, label: string, from: string, to: string, s: string): boolean => signedBy(x, label, from, to, s, k.sender)
      expect(check(m, k.label, a.peerId, b.peerId, session)).toBe(true)
      // into another run
      expect(check(m, k.label, a.peerId, b.peerId, other)).toBe(false)
      expect(check({ ...m, session: other }, k.label, a.peerId, b.peerId, other)).toBe(false)
      // shown to another peer as addressed to it
      expect(check(m, k.label, a.peerId, c.peerId, session)).toBe(false)
      expect(check({ ...m, to: c.peerId }, k.label, a.peerId, c.peerId, session)).toBe(false)
      // passed off as another party's
      expect(check(m, k.label, c.peerId, b.peerId, session)).toBe(false)
      expect(check({ ...m, [k.sender]: c.peerId }, k.label, c.peerId, b.peerId, session)).toBe(false)
      // as a message of another type (each label is its type's)
      for (const l of kinds) if (l.label !== k.label) expect(signedBy(m, l.label, a.peerId, b.peerId, session, k.sender)).toBe(false)
      // any other field edited
      expect(check({ ...m, v: 2 }, k.label, a.peerId, b.peerId, session)).toBe(false)
      // unsigned
      const { sig: _sig, ...unsigned } = m
      expect(check(unsigned, k.label, a.peerId, b.peerId, session)).toBe(false)
    })
  }
})
