// Wires commands only: each command is an async function that returns or throws; errors carry
// their exit code through exitCodeOf(); output is flushed here.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { ProtocolAbort } from '../protocol/errors.ts'
import { resolveHome } from '../agent/home.ts'
import { Output } from './output.ts'
import { EXIT, EXIT_TABLE, exitCodeOf } from './exit-codes.ts'
import type { BuyerHooks } from '../protocol/masked-sum-buyer.ts'
import type { ServeHooks } from '../agent/serve.ts'
// Command modules are imported lazily: `init` or `peers list` must not pay for loading libp2p.
const identity = () => import('./commands/identity.ts')
const peersCmd = () => import('./commands/peers.ts')
const netCmd = () => import('./commands/net.ts')
const queryCmd = () => import('./commands/query.ts')
const dataCmd = () => import('./commands/data.ts')
const approveCmd = () => import('./commands/approve.ts')
const auditCmd = () => import('./commands/audit.ts')
const evidenceCmd = () => import('./commands/evidence.ts')
const pinsCmd = () => import('./commands/pins.ts')
const budgetCmd = () => import('./commands/budget.ts')

/**
 * Deviations injected by the test-only entry point (test/helpers/deviant.ts); the production
 * binary (bin/mpc-agent.js) never passes any: there is no flag or variable that enables them.
 */
export interface MainHooks {
  buyer?: BuyerHooks
  serve?: ServeHooks
}

interface Globals {
  home?: string
  json?: boolean
  quiet?: boolean
  verbose?: boolean
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

function positive(v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive number of seconds`)
  return n
}

/** --timeout: the run's signal fires with a timeout abort (exit 5), naming the flag. */
function timeoutSignal(seconds: number): AbortSignal {
  const c = new AbortController()
  setTimeout(() => c.abort(new ProtocolAbort({ reason: 'timeout', accused: null, detail: `the run exceeded --timeout ${seconds} s` })), seconds * 1000).unref()
  return c.signal
}

export async function main(argv: string[], hooks: MainHooks = {}): Promise<number> {
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
      await (await netCmd()).serveCommand(home, o, out, interrupt.signal, hooks.serve)
    })

  program.command('ping <name>')
    .description('check that a configured peer is reachable and print round-trip times')
    .option('--count <n>', 'number of pings', (v) => Number.parseInt(v, 10), 3)
    .action(async (name: string, o: { count: number }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await netCmd()).pingCommand(home, name, o, out)
    })

  const query = program.command('query').description('check or run an aggregate query (buyer)')
  query.command('check <file>')
    .description('validate a query file; print its canonical form, cell count and digest')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await queryCmd()).queryCheck(home, file, out)
    })
  query.command('run <file>')
    .description('negotiate with every provider, run the masked sum, write the result (starts its own node)')
    .option('--out <file>', 'result file, written atomically (default: ./<query id>.<format>)')
    .addOption(new Option('--format <format>', 'result format').choices(['json', 'csv']).default('json'))
    .option('--timeout <seconds>', 'bound the whole run; exit 5 when exceeded', (v) => positive(v, '--timeout'))
    .option('--retry <n>', 'retry unreachable providers n times, before negotiation only', (v) => Number.parseInt(v, 10), 0)
    .action(async (file: string, o: { out?: string; format: 'json' | 'csv'; timeout?: number; retry: number }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      const signal = o.timeout ? AbortSignal.any([interrupt.signal, timeoutSignal(o.timeout)]) : interrupt.signal
      await (await queryCmd()).queryRun(home, file, o, out, signal, hooks.buyer)
    })

  const policy = program.command('policy').description('this provider\'s policy (policy.yaml)')
  policy.command('check <file>')
    .description('would this agent\'s policy accept the query? (exit 3 with every reason if not)')
    .option('--buyer <name>', 'the buyer proposing it (default: the configured buyer)')
    .action(async (file: string, o: { buyer?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await queryCmd()).policyCheck(home, file, o, out)
    })

  const data = program.command('data').description('this provider\'s local datasets (never sent)')
  data.command('inspect <dataset>').description('schema and row count of a configured dataset')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await dataCmd()).dataInspect(home, name, out)
    })
  data.command('preview <file>').description('this provider\'s own contribution to a query, computed locally')
    .option('--buyer <name>', 'the buyer the query comes from (default: the configured buyer)')
    .addOption(new Option('--format <format>', 'output').choices(['table', 'csv']).default('table'))
    .action(async (file: string, o: { buyer?: string; format: 'table' | 'csv' }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await dataCmd()).dataPreview(home, file, o, out)
    })

  const audit = program.command('audit').description('list the audit log (proposals, decisions, certificates, outcomes)')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await auditCmd()).auditList(home, out)
    })
  audit.command('verify').description('check the hash chain and the signed head; exit 6 if the log was altered')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await auditCmd()).auditVerify(home, out)
    })

  const evidence = program.command('evidence').description('evidence of aborted runs (README "Evidence")')
  evidence.command('verify <file>')
    .description('check an abort\'s evidence bundle offline: signatures, session, who said what, what it proves (exit 8: accusation unproven, 9: invalid)')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { out } = ctx(cmd)
      ;(await evidenceCmd()).evidenceVerify(file, out)
    })
  program.command('budget')
    .description('privacy budget (policy privacy:): spent, reserved and remaining per buyer and data source')
    .option('--buyer <name>', 'one buyer (configured name or peer ID)')
    .action(async (o: { buyer?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await budgetCmd()).budgetShow(home, o, out)
    })
  const pins = program.command('pins').description('differencing pins: the provider set this agent served per data source (policy differencing_window_s)')
  pins.command('list').description('list the live pins')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await pinsCmd()).pinsList(home, out)
    })
  pins.command('clear').description('remove pins (e.g. for a provider that left for good); recorded in the audit log')
    .option('--proposal <id>', 'the pins of one run, by proposal digest (prefix of 8+ hex digits)')
    .option('--group <group>', 'every pin of one group, as listed (e.g. group:default)')
    .option('--all', 'every pin')
    .action(async (o: { proposal?: string; group?: string; all?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await pinsCmd()).pinsClear(home, o, out)
    })

  program.command('approve [id]')
    .description('approve a proposal waiting for manual approval in the running serve (no id: list them)')
    .action(async (id: string | undefined, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await approveCmd()).decideCommand(home, id, true, out)
    })
  program.command('reject <id>')
    .description('reject a proposal waiting for manual approval')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await approveCmd()).decideCommand(home, id, false, out)
    })

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are successes; everything else commander already printed
      code = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? EXIT.ok : EXIT.usage
    } else if (interrupt.signal.aborted) {
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
