// Progress events emitted by the protocol runners; the agent forwards them to the reporter / UI.
// They never carry raw data, unmasked vectors, seeds or keys.

export type Phase = 'negotiate' | 'agree' | 'crosscheck' | 'compute' | 'confirm' | 'result'

export type ProtocolEvent =
  | { type: 'phase'; phase: Phase; state: 'start' | 'done'; at: number }
  | { type: 'decision'; provider: string; decision: 'accept' | 'reject'; reasons?: string[] }
  | { type: 'progress'; peer: string; cells: number; totalCells: number; bytes: number }
  | { type: 'peer'; peer: string; state: 'connecting' | 'connected' | 'done' | 'failed'; rttMs?: number }

export type EventSink = (e: ProtocolEvent) => void
export const noEvents: EventSink = () => {}
