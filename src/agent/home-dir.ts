// Where the agent's home is, apart from home.ts: the CLI resolves it for every command, and home.ts
// loads libp2p's key code, which `--version`, `--help` or a usage error do not need.
import { join, resolve } from 'node:path'
import { homedir } from 'node:os'

export function resolveHome(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag)
  if (env.MPC_AGENT_HOME) return resolve(env.MPC_AGENT_HOME)
  const xdg = env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(xdg, 'mpc-agent')
}
