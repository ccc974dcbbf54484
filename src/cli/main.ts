// Wires commands only: each command is an async function that returns or throws; errors carry
// their exit code through exitCodeOf(); output is flushed here.
import { Command, CommanderError, Option } from 'commander'
import { resolveHome } from '../agent/home.ts'
import { Output } from './output.ts'
import { EXIT, EXIT_TABLE, exitCodeOf } from './exit-codes.ts'
// Command modules are imported lazily: `init` or `peers list` must not pay for loading libp2p.
const identity = () => import('./commands/identity.ts')
const peersCmd = () => import('./commands/peers.ts')
const netCmd = () => import('./commands/net.ts')

interface Globals {
  home?: string
  json?: boolean
  quiet?: boolean
  verbose?: boolean
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok
  const program = new Command('mpc-agent')
  const ctx = (cmd: Command): { home: string; out: Output } => {
    const g = cmd.optsWithGlobals<Globals>()
    return {
      home: resolveHome(g.home),
      out: new Output({ json: !!g.json, quiet: !!g.quiet, verbose: !!g.verbose })
    }
  }
  const interrupt = new AbortController()
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupt.abort(Object.assign(new Error(`interrupted by ${sig}`), { name: 'Interrupted', signal: sig }))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  program
    .description('Peer-to-peer secure aggregation: answer a query across firms without revealing any firm\'s data.')
    .option('--home <dir>', 'agent home (default: $MPC_AGENT_HOME, else ~/.config/mpc-agent)')
    .option('--json', 'machine-readable output: NDJSON events on stdout')
    .option('-q, --quiet', 'print only the result')
    .option('-v, --verbose', 'show stack traces and debug detail')
    .addHelpText('after', '\n' + EXIT_TABLE)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })

  program.command('init')
    .description('create this agent\'s identity (Ed25519 key, mode 0600) and config.yaml')
    .requiredOption('--name <name>', 'this agent\'s name, as peers will call it')
    .option('--listen <multiaddr>', 'listen address (repeatable; default /ip4/127.0.0.1/tcp/0)', collect)
    .option('--force', 'replace an existing identity and config')
    .action(async (o: { name: string; listen?: string[]; force?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await identity()).initCommand(home, o, out)
    })

  program.command('id')
    .description('print this agent\'s peer ID and the multiaddrs others should dial')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await identity()).idCommand(home, out)
    })

  const peers = program.command('peers').description('manage known peers (the allowlist)')
  peers.command('add <name> <multiaddr>')
    .description('add or update a peer; the multiaddr must end in /p2p/<peer-id>')
    .addOption(new Option('--role <role>', 'the peer\'s role').choices(['provider', 'buyer']).makeOptionMandatory())
    .action(async (name: string, addr: string, o: { role: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await peersCmd()).peersAdd(home, name, addr, o.role, out)
    })
  peers.command('import <file>')
    .description('add many peers from a YAML/JSON list of {name, addr, role}')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await peersCmd()).peersImport(home, file, out)
    })
  peers.command('list').description('list known peers').action(async (_o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await peersCmd()).peersList(home, out)
  })
  peers.command('remove <name>').description('forget a peer').action(async (name: string, _o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await peersCmd()).peersRemove(home, name, out)
  })

  program.command('serve')
    .description('run the agent until SIGINT/SIGTERM, answering proposals from configured buyers')
    .option('--ready-file <path>', 'write {pid, peerId, addrs} as JSON here once listening')
    .action(async (o: { readyFile?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await netCmd()).serveCommand(home, o, out, interrupt.signal)
    })

  program.command('ping <name>')
    .description('check that a configured peer is reachable and print round-trip times')
    .option('--count <n>', 'number of pings', (v) => Number.parseInt(v, 10), 3)
    .action(async (name: string, o: { count: number }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await netCmd()).pingCommand(home, name, o, out)
    })

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are successes; everything else commander already printed
      code = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? EXIT.ok : EXIT.usage
    } else if (interrupt.signal.aborted && (err as Error)?.name === 'Interrupted') {
      code = (interrupt.signal.reason as { signal?: string }).signal === 'SIGINT' ? EXIT.sigint : EXIT.sigterm
    } else {
      code = exitCodeOf(err)
      const g = program.opts<Globals>()
      const out = new Output({ json: !!g.json, quiet: !!g.quiet, verbose: !!g.verbose })
      const msg = err instanceof Error ? err.message : String(err)
      out.error(code === EXIT.internal ? `internal error: ${msg} (rerun with --verbose and report it)` : msg, code, err)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  return code
}
