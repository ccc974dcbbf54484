// Buyer side of /mpc-agent/masked-sum/4.0.0 (protocols/masked-sum.md §7): accumulate every
// provider's masked chunks into one running sum as they arrive (never holding N vectors), check the
// stream (check 4), send the signed inclusion list (check 7), remove the revealed self masks, check
// the canaries (check 6a), flag implausible values (check 6b: never an abort, nothing sent back),
// and sign a receipt with a salted commitment.
import { randomBytes } from 'node:crypto'
import { equalBytes, fromHex, toHex, wipe } from '../crypto/bytes.ts'
import { statementDigest, type Signer } from '../crypto/sign.ts'
import { ProtocolAbort } from './errors.ts'
import type { EventSink } from './events.ts'
import type { SessionParams } from './session.ts'
import type { Channel } from './transport.ts'
import { CHUNK_ELEMS, accumulate, removeSelfMask } from './masks.ts'
import { RunContext, asAbort } from './run-context.ts'
import { CLOCK_SKEW_MS } from './negotiation-messages.ts'
import { resultCommitment } from './masked-sum-provider.ts'
import type { NegotiationHooks } from './negotiation.ts'
import {
  CANARIES, LABEL, MSG, decodeChunk, vectorHasher, decodeJson, encodeChunk, encodeJson, shapes, signBody, signedBy,
  type DoneBody, type DoneMsg, type InclusionBody, type InclusionEntry, type ReceiptBody, type RevealMsg, type StartBody
} from './masked-sum-messages.ts'

/** Test-only deviations of a buyer (test/helpers/deviant.ts), in negotiation and in the masked sum. */
export interface BuyerHooks extends NegotiationHooks {
  inclusion?(body: InclusionBody, provider: string): InclusionBody
  stallAt?: 'inclusion' | 'receipt'
  /** Raw frames sent to `provider` right after START (hostile-input tests, issue 16). */
  afterStart?(provider: string): Uint8Array[]
  /** Check 7″ tests: the result sent to output recipients, instead of the one committed to. */
  resultToRecipients?(result: BigUint64Array): BigUint64Array
  /** Abort the run once every REVEAL is in (the buyer then holds the result): masked-sum.md §9.2. */
  abortAfterReveal?: boolean
  /** Propose even when a relayed link's data limit is too small (src/agent/run.ts): the providers' own check then decides. */
  skipRelayPrecheck?: boolean
}

export interface BuyerRunOptions {
  signer: Signer
  params: SessionParams
  /** One channel per provider, opened on the masked-sum protocol. */
  channels: ReadonlyMap<string, Channel>
  events?: EventSink
  signal?: AbortSignal
  hooks?: BuyerHooks
  /** Observe the running sum (tests: an aborted run must leave it self-masked). */
  onState?(state: BuyerState): void
}

export interface BuyerState {
  phase: 'streaming' | 'inclusion' | 'revealed'
  sum: BigUint64Array
  revealed: number
}

export interface BuyerRunResult {
  /** The data part of the total (params.length values). */
  total: BigUint64Array
  commitment: Uint8Array
  r: Uint8Array
  dones: DoneMsg[]
  reveals: RevealMsg[]
  /** The INCLUSION as signed for each provider (each names its recipient), canonical order. */
  inclusion: Array<InclusionBody & { sig: string }>
  /**
   * Check 6b: indices into `total` of values outside the bounds the agreement allows. Flagged in
   * the buyer's output only; the run goes on exactly as if there were none (masked-sum.md §8).
   */
  implausible: number[]
  bytesIn: number
  stats: BuyerRunStats
}

/** Where the buyer's time went (bench/README.md, phase breakdown). */
export interface BuyerRunStats {
  /** From START sent to the last DONE verified. */
  streamMs: number
  /** Removing the revealed self masks. */
  unmaskMs: number
  /** From INCLUSION sent to the last REVEAL applied and check 6 passed. */
  confirmMs: number
}

export async function runBuyer(o: BuyerRunOptions): Promise<BuyerRunResult> {
  const { params, signer, hooks = {} } = o
  const sessionHex = toHex(params.session)
  const self = signer.peerId
  const ctx = new RunContext(signer, params.session, o.signal, { buyer: params.buyer, deadline: params.deadline + CLOCK_SKEW_MS })
  const emit = o.events ?? (() => {})
  const total = params.length + CANARIES
  const t = params.timeouts
  // the running sum: uniformly random until every self mask is removed (masked-sum.md §9.1)
  const sum = new BigUint64Array(total)
  const state: BuyerState = { phase: 'streaming', sum, revealed: 0 }
  let bytesIn = 0
  const stats: BuyerRunStats = { streamMs: 0, unmaskMs: 0, confirmMs: 0 }
  try {
    for (const p of params.providers) {
      const ch = o.channels.get(p)
      if (!ch || ch.remote !== p) throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: `no channel to provider ${p}` })
      ctx.watch(ch)
    }
    await Promise.all(params.providers.map(async (p) => {
      const start: StartBody = { v: 4, type: 'start', session: sessionHex, from: self, to: p }
      await ctx.send(o.channels.get(p) as Channel, encodeJson(MSG.start, signBody(signer, LABEL.start, start)))
      for (const f of hooks.afterStart?.(p) ?? []) await ctx.send(o.channels.get(p) as Channel, f)
    }))

    // §7.2 streaming (check 4): every provider in parallel, chunks added on arrival
    emit({ type: 'phase', phase: 'compute', state: 'start', at: Date.now() })
    const tStream = performance.now()
    const computeUntil = Date.now() + (t.negotiate_s + t.compute_s) * 1000
    const dones = await Promise.all(params.providers.map(async (p) => {
      const ch = o.channels.get(p) as Channel
      const h = vectorHasher(params.session, p, total)
      let off = 0
      let index = 0
      let received = 0 // running total per provider, as providers report it
      for (;;) {
        const frame = await ctx.next(ch, computeUntil - Date.now(), off < total ? `CHUNK ${index}` : 'DONE')
        if (frame[0] === MSG.chunk) {
          const c = decodeChunk(frame, p)
          if (c.index !== index) throw bad(p, `CHUNK ${c.index} arrived where ${index} was due (duplicate or out of order)`)
          if (c.offset !== off) throw bad(p, `CHUNK ${index} starts at ${c.offset}, expected ${off}`)
          if (c.values.length === 0 || c.values.length > CHUNK_ELEMS) throw bad(p, `CHUNK ${index} has ${c.values.length} values (1..${CHUNK_ELEMS} allowed)`)
          if (off + c.values.length > total) throw bad(p, `vector longer than the agreed ${total} values`)
          accumulate(sum, off, c.values)
          h.update(new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength))
          off += c.values.length
          index++
          bytesIn += frame.length
          emit({ type: 'progress', peer: p, cells: off, totalCells: total, bytes: received += frame.length })
          continue
        }
        const d = decodeJson<DoneMsg>(frame, MSG.done, p, shapes.done)
        if (off !== total) throw bad(p, `vector ended after ${off} of ${total} values`)
        if (d.type !== 'done' || d.session !== sessionHex) throw new ProtocolAbort({ reason: 'wrong_session', accused: p, detail: 'DONE is bound to another session' })
        if (d.provider !== p || d.length !== total || d.chunks !== index) throw bad(p, 'DONE does not describe the stream it ends')
        if (!signedBy(d, LABEL.done, p, self, sessionHex, 'provider')) throw new ProtocolAbort({ reason: 'bad_signature', accused: p, detail: 'DONE is not signed by its provider and addressed to this buyer' })
        if (!equalBytes(new Uint8Array(h.digest()), fromHex(d.hash, 32))) throw bad(p, 'DONE signs a hash of a different vector than the one streamed')
        emit({ type: 'peer', peer: p, state: 'done' })
        return d
      }
    }))
    stats.streamMs = performance.now() - tStream
    emit({ type: 'phase', phase: 'compute', state: 'done', at: Date.now() })

    // §7.3 inclusion (check 7): the signed list of every vector summed, to every provider
    emit({ type: 'phase', phase: 'confirm', state: 'start', at: Date.now() })
    const tConfirm = performance.now()
    state.phase = 'inclusion'
    o.onState?.(state)
    const entries: InclusionEntry[] = dones.map((d) => ({ provider: d.provider, length: d.length, chunks: d.chunks, hash: d.hash, sig: d.sig }))
    // one signature per provider: each INCLUSION names its recipient (§5), so none can be shown as sent to another
    const signed = params.providers.map((p) => signBody(signer, LABEL.inclusion, { v: 4, type: 'inclusion', session: sessionHex, from: self, to: p, entries } satisfies InclusionBody))
    const inclusionDigest = new Map(signed.map(({ sig: _s, ...b }) => [b.to, toHex(statementDigest(LABEL.inclusion, b))]))
    if (hooks.stallAt === 'inclusion') await new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason as Error)))
    await Promise.all(params.providers.map((p, i) => {
      const { sig: _s, ...body } = signed[i] as InclusionBody & { sig: string }
      const b = hooks.inclusion ? hooks.inclusion(structuredClone(body), p) : null
      return ctx.send(o.channels.get(p) as Channel, encodeJson(MSG.inclusion, b ? signBody(signer, LABEL.inclusion, b) : signed[i] as object))
    }))

    // §7.4 reveals: each seed removes one self mask, as soon as its REVEAL verifies (the sum stays
    // masked by the others' self masks until the last one); all must arrive before anything is released
    const reveals = await Promise.all(params.providers.map(async (p) => {
      const m = decodeJson<RevealMsg>(await ctx.next(o.channels.get(p) as Channel, t.confirm_s * 1000, 'REVEAL'), MSG.reveal, p, shapes.reveal)
      if (m.type !== 'reveal' || m.session !== sessionHex || m.inclusion !== inclusionDigest.get(p)) {
        throw new ProtocolAbort({ reason: 'wrong_session', accused: p, detail: 'REVEAL is bound to another session or inclusion list' })
      }
      if (!signedBy(m, LABEL.reveal, p, self, sessionHex, 'provider')) throw new ProtocolAbort({ reason: 'bad_signature', accused: p, detail: 'REVEAL is not signed by its provider and addressed to this buyer' })
      if (ctx.failure) throw ctx.failure
      const seed = fromHex(m.seed, 32)
      const t0 = performance.now()
      removeSelfMask(sum, params.session, seed)
      stats.unmaskMs += performance.now() - t0
      wipe(seed)
      state.revealed++
      return m
    }))
    state.phase = 'revealed'
    if (hooks.abortAfterReveal) throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: 'the buyer aborted after every REVEAL (test deviation)' })

    // §7.5 check 6: canaries, then plausibility. Neither can name a culprit (§9.3).
    for (let i = params.length; i < total; i++) {
      if (sum[i] !== 0n) {
        throw new ProtocolAbort({ reason: 'canary_nonzero', accused: null, detail: 'a canary cell is nonzero after unmasking: some provider\'s masks or seed were wrong; the result is withheld' })
      }
    }
    // 6b is local to the buyer: whether a total crosses its bound depends on every provider's data,
    // so an abort or anything else sent back would tell a provider about the others' sum (§8)
    const implausible = implausibleValues(params, sum)
    stats.confirmMs = performance.now() - tConfirm
    // after check 6 the running sum is the result: hand out its data part as is (no second vector)
    const data = sum.subarray(0, params.length)

    // §7.6 receipt with a salted commitment; r and the result only to output recipients
    if (hooks.stallAt === 'receipt') await new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason as Error)))
    const r = new Uint8Array(randomBytes(32))
    const commitment = resultCommitment(r, data)
    await Promise.all(params.providers.map(async (p) => {
      const rbody: ReceiptBody = { v: 4, type: 'receipt', session: sessionHex, from: self, to: p, commitment: toHex(commitment), cells: params.length }
      const receipt = signBody(signer, LABEL.receipt, rbody)
      const ch = o.channels.get(p) as Channel
      const out = params.outputProviders.includes(p)
      await ctx.send(ch, encodeJson(MSG.receipt, out ? { ...receipt, r: toHex(r) } : receipt))
      const shown = out && hooks.resultToRecipients ? hooks.resultToRecipients(data.slice()) : data
      if (out) for (let off = 0, i = 0; off < shown.length; off += CHUNK_ELEMS, i++) await ctx.send(ch, encodeChunk(i, off, shown.subarray(off, off + CHUNK_ELEMS)))
    }))
    emit({ type: 'phase', phase: 'confirm', state: 'done', at: Date.now() })
    await ctx.closeAll()
    ctx.end()
    return { total: data, commitment, r, dones, reveals, inclusion: signed, implausible, bytesIn, stats }
  } catch (e) {
    ctx.fail(asAbort(e)) // settled: only an accusation its evidence proves stays one
    const err = ctx.failure as ProtocolAbort
    o.onState?.(state)
    await ctx.abortAll(err.info)
    sum.fill(0n)
    throw err
  }
}

function bad(p: string, detail: string): ProtocolAbort {
  return new ProtocolAbort({ reason: 'bad_vector', accused: p, detail: `${p}: ${detail}` })
}


/**
 * Check 6b: the indices of decoded values outside what the agreed clip and row bound allow (none:
 * every value is plausible). A flag for the buyer's output, never an abort (masked-sum.md §8).
 */
export function implausibleValues(params: SessionParams, sum: BigUint64Array): number[] {
  const out: number[] = []
  const k = params.bounds.length
  if (k === 0) return out
  // Bounds strictly inside ±2^53 (every realistic one) are checked on the u32 halves as doubles:
  // hi·2^32 is exact and the one rounding of + lo cannot carry a value across such a bound. ~1 ns a
  // value instead of BigInt reads and compares (tens of ms at a million cells). Others use BigInt.
  const LIMIT = 2n ** 53n
  const fast = params.bounds.map((b) => b.min > -LIMIT && b.max < LIMIT)
  const lo = params.bounds.map((b) => Number(b.min))
  const hi = params.bounds.map((b) => Number(b.max))
  const u32 = new Uint32Array(sum.buffer, sum.byteOffset, params.length * 2)
  const i32 = new Int32Array(sum.buffer, sum.byteOffset, params.length * 2)
  for (let i = 0, s = 0; i < params.length; i++, s = s + 1 === k ? 0 : s + 1) {
    const signed = params.signed[s] === true
    let ok: boolean
    if (fast[s]) {
      const v = (signed ? (i32[2 * i + 1] as number) : (u32[2 * i + 1] as number)) * 4294967296 + (u32[2 * i] as number)
      ok = v >= (lo[s] as number) && v <= (hi[s] as number)
    } else {
      const raw = sum[i] as bigint
      const v = signed ? BigInt.asIntN(64, raw) : raw
      const b = params.bounds[s] as { min: bigint; max: bigint }
      ok = v >= b.min && v <= b.max
    }
    if (!ok) out.push(i)
  }
  return out
}

export type { DoneBody }
