// Regenerates masked-sum-v4.json from the fixed seeds in test/helpers/mask-fixtures.ts.
// Run: node protocols/vectors/generate.ts   (only when the spec version changes)
import { writeFileSync } from 'node:fs'
import { x25519 } from '@noble/curves/ed25519.js'
import { toHex } from '../../src/crypto/bytes.ts'
import { confirmTag, pairKeys, selfMaskKey } from '../../src/crypto/kdf.ts'
import { Prg } from '../../src/crypto/prg.ts'
import { removeSelfMask } from '../../src/protocol/masks.ts'
import { fixedParties, maskAll, seedOf } from '../../test/helpers/mask-fixtures.ts'

const parties = await fixedParties(3, 'golden')
const session = seedOf('golden/session')
const pairs = []
for (let a = 0; a < parties.length; a++) {
  for (let b = a + 1; b < parties.length; b++) {
    const pa = parties[a]!
    const pb = parties[b]!
    const k = pairKeys(session, pa.ephPrivate, { peerId: pa.peerId, ephemeralPublic: pa.ephPublic }, { peerId: pb.peerId, ephemeralPublic: pb.ephPublic })
    pairs.push({
      a, b,
      x25519_shared: toHex(x25519.getSharedSecret(pa.ephPrivate, pb.ephPublic)),
      prg_key: toHex(k.prgKey),
      confirm_key: toHex(k.confirmKey),
      confirm_a_to_b: toHex(confirmTag(k.confirmKey, session, pa.peerId, pb.peerId)),
      prg_first_words: Array.from(new Prg(k.prgKey).next(new BigUint64Array(4)), String)
    })
  }
}
const inputs = [[1n, 2n, 3n, 0n, 18446744073709551615n], [10n, 0n, 7n, 0n, 1n], [100n, 5n, 0n, 0n, 0n]]
const xs = inputs.map((x) => BigUint64Array.from(x))
const ys = maskAll(parties, session, xs)
const total = new BigUint64Array(5)
for (const y of ys) for (let i = 0; i < 5; i++) total[i] = total[i]! + y[i]!
for (const p of parties) removeSelfMask(total, session, p.selfSeed)
const out = {
  description: 'masked-sum v4 golden vectors (protocols/masked-sum.md §3-§4). Seeds: sha256("golden/identity/i") Ed25519 identities, sha256("golden/ephemeral/i") X25519 private keys, sha256("golden/self/i") self-mask seeds, session = sha256("golden/session"). Parties listed in canonical order. u64 values as decimal strings.',
  session: toHex(session),
  parties: parties.map((p) => ({ peer_id: p.peerId, ephemeral_public: toHex(p.ephPublic), self_mask_key: toHex(selfMaskKey(p.selfSeed, session)) })),
  pairs,
  inputs: inputs.map((x) => x.map(String)),
  masked: ys.map((y) => Array.from(y, String)),
  total: Array.from(total, String)
}
writeFileSync(new URL('./masked-sum-v4.json', import.meta.url), JSON.stringify(out, null, 2) + '\n')
console.log('wrote protocols/vectors/masked-sum-v4.json')
