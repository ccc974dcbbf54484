// pins list | clear: this provider's differencing pins (negotiation.md §6.2). Clearing one is an
// operator's decision (a provider left for good) and is recorded in the audit log.
import { openAgent } from '../../agent/agent.ts'
import { peerNamer } from '../../agent/context.ts'
import { AuditLog } from '../../agent/audit.ts'
import { ConfigError } from '../../agent/errors.ts'
import { DurableStore } from '../../agent/store.ts'
import { AdmissionStore, type PinSelector } from '../../agent/admission.ts'
import type { Pin } from '../../policy/differencing.ts'
import type { Output } from '../output.ts'

function describe(p: Pin, nameOf: (id: string) => string): string {
  return `${p.proposal.slice(0, 12)}  ${p.group}  {${p.providers.map(nameOf).join(', ')}}  dataset ${p.dataset}, buyer ${nameOf(p.buyer)}, until ${new Date(p.until).toISOString()}`
}

export function pinsList(home: string, out: Output): void {
  const agent = openAgent(home)
  const pins = new AdmissionStore(DurableStore.open(agent.paths.state)).list().sort((a, b) => a.at - b.at)
  if (out.opts.json) return out.data(pins)
  if (!pins.length) return out.result('no differencing pins')
  const nameOf = peerNamer(agent)
  out.result(['proposal      group  providers  details', ...pins.map((p) => describe(p, nameOf))].join('\n'))
}

export function pinsClear(home: string, o: { proposal?: string; group?: string; all?: boolean }, out: Output): void {
  if (!o.proposal && !o.group && !o.all) throw new ConfigError('say which pins to clear: --proposal ID, --group GROUP or --all (see `mpc-agent pins list`)')
  if (o.proposal && !/^[0-9a-fA-F]{8,64}$/.test(o.proposal)) throw new ConfigError('--proposal takes a proposal digest or a prefix of at least 8 hex digits (see `mpc-agent pins list`)')
  const agent = openAgent(home)
  const sel: PinSelector = { proposal: o.proposal, group: o.group, all: o.all }
  const removed = new AdmissionStore(DurableStore.open(agent.paths.state)).clear(sel)
  if (removed.length) {
    AuditLog.open(agent.paths, agent.identity.signer).append('pins_cleared', { data: { selector: sel, pins: removed, by: 'operator (mpc-agent pins clear)' } })
  }
  if (out.opts.json) return out.data({ removed })
  const nameOf = peerNamer(agent)
  out.result(removed.length ? [`cleared ${removed.length} pin(s), recorded in the audit log:`, ...removed.map((p) => describe(p, nameOf))].join('\n') : 'no pin matched; nothing cleared')
}
