// The serving side of an agent: protocol handlers for negotiation and masked sum.
import type { Agent } from './agent.ts'
import type { AgentNode } from '../net/node.ts'
import type { RunEvent } from './events.ts'

export interface Services {
  stop(): Promise<void>
}

export async function startServices(
  _agent: Agent,
  _node: AgentNode,
  _emit: (e: RunEvent) => void,
  _log: (line: string) => void
): Promise<Services> {
  return { async stop() {} }
}
