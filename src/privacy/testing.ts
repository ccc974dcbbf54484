// TEST-ONLY reproducible randomness for the noise sampler. Production modules never import this file
// (test/privacy/sampler.test.ts fails if any file under src/ outside this one does): production noise comes only
// from node:crypto (sampler.ts). The stream is AES-256-CTR keyed by SHA-256(seed) — deterministic, uniform for
// statistical tests, and obviously not secret.
import { createCipheriv, createHash, type Cipheriv } from 'node:crypto'
import { addNoiseWith, samplesWith, type NoiseLayout } from './_dgauss.ts'
import type { WordSource } from './random.ts'

export type { WordSource }

const POOL_BYTES = 65_536

export class SeededWords implements WordSource {
  private readonly cipher: Cipheriv
  private readonly zeros = new Uint8Array(POOL_BYTES)
  private pool = new Uint32Array(0)
  private pos = 0
  constructor(seed: string) {
    const key = createHash('sha256').update(`mpc-agent/privacy/test-seed/v1\0${seed}`).digest()
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  }
  next(): number {
    if (this.pos === this.pool.length) {
      const bytes = this.cipher.update(this.zeros)
      this.pool = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
      this.pos = 0
    }
    return this.pool[this.pos++] as number
  }
}

/** `count` samples of N_Z(0, σ²) from a given (seeded or crypto) word source */
export function samples(src: WordSource, sigma: number, count: number): Float64Array {
  return samplesWith(src, sigma, count)
}

/** addDiscreteGaussianNoise with a given word source */
export function addNoise(src: WordSource, vec: BigUint64Array, layout: NoiseLayout): void {
  addNoiseWith(src, vec, layout)
}
