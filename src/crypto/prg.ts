// The mask PRG (protocols/masked-sum.md §3.3): AES-256-CTR from node:crypto, 32-byte key, an
// all-zero 16-byte initial counter block (safe: every key is used for one stream only, since each
// key is derived per pair and per session), the keystream read as little-endian u64 words.
// Successive fill() calls continue the same stream, so masks are produced chunk by chunk.
import { createCipheriv, createSecretKey, type Cipheriv } from 'node:crypto'
import { endianness } from 'node:os'

if (endianness() !== 'LE') throw new Error('mpc-agent needs a little-endian host (the wire and the PRG read u64 LE)')

const ZERO_IV = Buffer.alloc(16)
const ZEROS = Buffer.alloc(65536 * 8)

export class Prg {
  private cipher: Cipheriv | null

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError(`PRG key must be 32 bytes, got ${key.length}`)
    // through a KeyObject: node:crypto's raw-key path costs ~15 µs more per cipher here (Node 24), and
    // a provider keys N PRGs per run (issue 20); the key bytes are the same
    this.cipher = createCipheriv('aes-256-ctr', createSecretKey(key), ZERO_IV)
  }

  /** The next `out.length` words of the keystream. */
  next(out: BigUint64Array): BigUint64Array {
    if (!this.cipher) throw new Error('PRG used after destroy()')
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
    for (let o = 0; o < bytes.length; o += ZEROS.length) {
      const n = Math.min(ZEROS.length, bytes.length - o)
      const ks = this.cipher.update(ZEROS.subarray(0, n))
      bytes.set(ks, o)
      ks.fill(0)
    }
    return out
  }

  /**
   * Hand the next `words` words of keystream (at most 65 536) to `use`, then wipe them. No copy:
   * `use` reads node:crypto's own output buffer, as u64 words when it is 8-byte aligned (it is a
   * fresh allocation, so always in practice), else through one aligned copy.
   */
  withNext(words: number, use: (ks: BigUint64Array) => void): void {
    if (!this.cipher) throw new Error('PRG used after destroy()')
    if (words > ZEROS.length / 8) throw new RangeError(`at most ${ZEROS.length / 8} words at a time`)
    const out = this.cipher.update(ZEROS.subarray(0, words * 8))
    const aligned = out.byteOffset % 8 === 0 ? out : Buffer.from(out)
    try {
      use(new BigUint64Array(aligned.buffer, aligned.byteOffset, words))
    } finally {
      out.fill(0)
      if (aligned !== out) aligned.fill(0)
    }
  }

  destroy(): void {
    this.cipher?.final()
    this.cipher = null
  }
}
