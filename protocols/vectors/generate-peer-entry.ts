// Regenerates peer-entry-v2.json (protocols/directory.md §2): one entry signed by a fixed identity,
// with its canonical statement and digest, so another implementation can check its encoding bit for bit.
// Run: npx node protocols/vectors/generate-peer-entry.ts   (only when the entry version changes)
import { writeFileSync } from 'node:fs'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { toHex, utf8 } from '../../src/crypto/bytes.ts'
import { signerFromSeed, statementDigest } from '../../src/crypto/sign.ts'
import { canonicalize } from '../../src/crypto/canonical.ts'
import { PEER_ENTRY_LABEL_V2, signPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'

const seed = sha256(utf8('golden/peer-entry/identity/0'))
const key = await generateKeyPairFromSeed('Ed25519', seed)
const peerId = peerIdFromPrivateKey(key).toString()
const entry = signPeerEntryV2(signerFromSeed(peerId, seed), {
  name: 'alpha',
  addrs: [`/dns4/alpha.example/tcp/41001/p2p/${peerId}`],
  role: 'provider',
  seq: 1764000000000,
  exp: 1766592000,
  datasets: ['trips'],
  policy: { approval: 'auto', min_providers: 3, max_cells: 100000, dp_required: false }
})
const { sig: _sig, ...body } = entry
const out = {
  description: 'peer entry v2 golden vector (protocols/directory.md §2). Identity: Ed25519 seed sha256("golden/peer-entry/identity/0"). statement = JCS(entry without sig); digest = SHA-256(lp(label) || lp(statement)), lp = 4-byte big-endian length; sig = Ed25519(seed, digest).',
  label: PEER_ENTRY_LABEL_V2,
  statement: canonicalize(body),
  digest: toHex(statementDigest(PEER_ENTRY_LABEL_V2, body)),
  entry
}
writeFileSync(new URL('./peer-entry-v2.json', import.meta.url), JSON.stringify(out, null, 2) + '\n')
