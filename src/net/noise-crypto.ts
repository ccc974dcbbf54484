// The Noise transport cipher, tuned for bulk vectors (bench/README.md, "Transport").
// @chainsafe/libp2p-noise's default already uses node:crypto's ChaCha20-Poly1305 for messages of
// 1200 bytes or more, but it imports the raw 32-byte key into a new KeyObject for every message
// (up to 64 KiB each, so ~16 imports per 1 MiB of vector) and concatenates ciphertext and tag into
// a fresh buffer. This adapter keeps the primitive and the wire exactly as they are (same cipher,
// same nonces, same framing: it only changes how the calls into node:crypto are made): one
// KeyObject per cipher-state key, and ciphertext + tag handed on as a buffer list without a copy.
// Small messages and the handshake stay on the library's default path.
import { createCipheriv, createDecipheriv, createHash, createSecretKey, type KeyObject } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { Uint8ArrayList } from 'uint8arraylist'

const ALG = 'chacha20-poly1305'
const TAG = 16
/** Below this the library's WebAssembly ChaCha20-Poly1305 is faster than a node:crypto call. */
const NATIVE_MIN = 1200

// Keyed by the cipher state's key array (noise never mutates it in place; a rekey is a new array).
// A SHA-256 fingerprint of the bytes is compared too, so a key changed in place can never be served
// a stale KeyObject. No second copy of the key is kept in JS memory (issue 16): only the KeyObject,
// which lives as long as the cipher state's own key array (a WeakMap entry) and is then collected.
const keys = new WeakMap<Uint8Array, { fingerprint: Buffer; key: KeyObject }>()

const fingerprint = (k: Uint8Array): Buffer => createHash('sha256').update(k).digest()

function keyObject(k: Uint8Array): KeyObject {
  const hit = keys.get(k)
  const fp = fingerprint(k)
  if (hit && hit.fingerprint.equals(fp)) return hit.key
  const entry = { fingerprint: fp, key: createSecretKey(k) }
  keys.set(k, entry)
  return entry.key
}

type Encrypt = ICryptoInterface['chaCha20Poly1305Encrypt']
type Decrypt = ICryptoInterface['chaCha20Poly1305Decrypt']
type Out = ReturnType<Encrypt>
// noise is typed against uint8arraylist 2, libp2p's streams use 3; lists of both versions are one type
// at run time (each recognises the other by Symbol.for('@achingbrain/uint8arraylist')), so a version-3
// list is handed back under noise's version-2 type
const asOut = (l: Uint8ArrayList): Out => l as unknown as Out

export const transportCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(...[plaintext, nonce, ad, k]: Parameters<Encrypt>): Out {
    if (plaintext.byteLength < NATIVE_MIN) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const c = createCipheriv(ALG, keyObject(k), nonce, { authTagLength: TAG })
    c.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const out = new Uint8ArrayList()
    if (plaintext instanceof Uint8Array) out.append(c.update(plaintext))
    else for (const b of plaintext) out.append(c.update(b))
    c.final() // a stream cipher: final() emits nothing, it computes the tag
    out.append(c.getAuthTag())
    return asOut(out)
  },
  chaCha20Poly1305Decrypt(...[ciphertext, nonce, ad, k, dst]: Parameters<Decrypt>): Out {
    if (ciphertext.byteLength < NATIVE_MIN) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const n = ciphertext.byteLength - TAG
    const d = createDecipheriv(ALG, keyObject(k), nonce, { authTagLength: TAG })
    d.setAAD(ad, { plaintextLength: n })
    d.setAuthTag(ciphertext.subarray(n))
    const out = new Uint8ArrayList()
    if (ciphertext instanceof Uint8Array) out.append(d.update(ciphertext.subarray(0, n)))
    else for (const b of ciphertext.sublist(0, n)) out.append(d.update(b))
    d.final() // throws if the tag does not verify: the message is refused before anyone reads it
    return asOut(out)
  }
}
