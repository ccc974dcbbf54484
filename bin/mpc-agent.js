#!/usr/bin/env node
// Entry point. Checks the Node version before loading anything that needs it (libp2p's Noise
// fails every handshake on Node < 22, which would surface later as misleading timeouts).
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`mpc-agent: Node ${process.versions.node} is too old; Node >= 22 is required (the project pins Node 24: run it through \`npx mpc-agent\` or \`npm run\`)\n`)
  process.exit(2)
}
const { main } = await import('../src/cli/main.ts')
const code = await main(process.argv.slice(2))
// Exit now: a half-closed libp2p socket must not keep a finished cron job alive. stdout and stderr
// writes to files, pipes and terminals are synchronous on Linux, so nothing printed is lost.
process.exit(code)
