// Wires commands only: each command is an async function that returns or throws; errors carry
// their exit code through exitCodeOf(); output is flushed here.
import { readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { ProtocolAbort } from '../protocol/errors.ts'
import { resolveHome } from '../agent/home-dir.ts'
import { DEFAULT_PORT } from '../agent/defaults.ts'
import { Output } from './output.ts'
import { EXIT, EXIT_TABLE, exitCodeOf } from './exit-codes.ts'
import type { BuyerHooks } from '../protocol/masked-sum-buyer.ts'
import type { ServeHooks } from '../agent/serve.ts'
// Command modules are imported lazily: `init` or `peers list` must not pay for loading libp2p.
const identity = () => import('./commands/identity.ts')
const peersCmd = () => import('./commands/peers.ts')
const directoryCmd = () => import('./commands/directory.ts')
const netCmd = () => import('./commands/net.ts')
const queryCmd = () => import('./commands/query.ts')
const dataCmd = () => import('./commands/data.ts')
const approveCmd = () => import('./commands/approve.ts')
const auditCmd = () => import('./commands/audit.ts')
const evidenceCmd = () => import('./commands/evidence.ts')
const pinsCmd = () => import('./commands/pins.ts')
const budgetCmd = () => import('./commands/budget.ts')
const relayCmd = () => import('./commands/relay.ts')

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

/** The package's version, read once for --version (package.json ships beside src/). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** Examples at the end of a command's --help: every subcommand shows how it is called. */
function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', '\nExamples:\n' + lines.map((l) => `  $ ${l}`).join('\n'))
}

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
    .version(packageVersion(), '-V, --version', 'print the version')
    // every subcommand's --help lists the global options too (they go before or after the command)
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', '\n' + EXIT_TABLE)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })

  const role = (): Option => new Option('--role <role>', 'provider or buyer').choices(['provider', 'buyer'])

  examples(program.command('init')
    .description('create this agent\'s identity (Ed25519 key, mode 0600) and config.yaml')
    .requiredOption('--name <name>', 'this agent\'s name, as peers will call it (required)')
    .addOption(role())
    .option('--listen <multiaddr>', `listen address (repeatable; default /ip4/127.0.0.1/tcp/${DEFAULT_PORT})`, collect)
    .option('--announce <multiaddr>', 'address others should dial, when it differs from --listen (port forward, DNS name; repeatable)', collect)
    .option('--force', 'replace an existing identity and config (refused while serve runs)')
    .action(async (o: { name: string; role?: 'provider' | 'buyer'; listen?: string[]; announce?: string[]; force?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await identity()).initCommand(home, o, out)
    }), [
    'mpc-agent --home ~/alpha init --name alpha --role provider',
    `mpc-agent init --name city --role buyer --listen /ip4/0.0.0.0/tcp/${DEFAULT_PORT} --announce /dns4/mpc.city.example/tcp/${DEFAULT_PORT}`
  ])

  examples(program.command('id')
    .description('print this agent\'s peer ID and the multiaddrs others should dial')
    .option('--entry', 'print this agent\'s signed entry (one JSON line) for others to `peers import`')
    .addOption(role())
    .option('--ttl <duration>', 'with --entry: how long the entry is valid, e.g. 12h, 7d (default 30d, at most 90d)')
    .option('--offer', 'with --entry: add the datasets policy.yaml has rules for and a summary of the policy (claims, for buyers to choose)')
    .action(async (o: { entry?: boolean; role?: 'provider' | 'buyer'; ttl?: string; offer?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await identity()).idCommand(home, o, out)
    }), [
    'mpc-agent id',
    'mpc-agent id --entry > alpha.peer.json      # send this file to the other parties'
  ])

  const peers = program.command('peers').description('manage known peers (the allowlist)')
  examples(peers.command('add <name> <multiaddr>')
    .description('add or update a peer; the multiaddr must end in /p2p/<peer-id>')
    .addOption(role().makeOptionMandatory())
    .option('--force', 'allow changing an existing peer\'s ID or role')
    .action(async (name: string, addr: string, o: { role: string; force?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await peersCmd()).peersAdd(home, name, addr, o.role, o, out)
    }), [
    `mpc-agent peers add beta /ip4/10.0.0.2/tcp/${DEFAULT_PORT}/p2p/12D3KooW... --role provider`
  ])
  examples(peers.command('import <file...>')
    .description('add or update peers from signed entries (`id --entry`), `peers list --json` output, or a YAML/JSON list of {name, addr, role}; "-" reads stdin')
    .option('--force', 'allow changing an existing peer\'s ID or role')
    .action(async (files: string[], o: { force?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await peersCmd()).peersImport(home, files, o, out)
    }), [
    'mpc-agent peers import alpha.peer.json beta.peer.json city.peer.json',
    'ssh alpha-host mpc-agent id --entry | mpc-agent peers import -'
  ])
  examples(peers.command('publish <relay>')
    .description('publish this agent\'s freshly signed entry to the directory at RELAY (a relay in `relays list`, or a multiaddr ending in /p2p/<relay-id>)')
    .addOption(role())
    .option('--ttl <duration>', 'how long the published entry is valid, e.g. 12h, 7d (default 30d, at most 90d)')
    .option('--offer', 'add the datasets policy.yaml has rules for and a summary of the policy')
    .action(async (relay: string, o: { role?: 'provider' | 'buyer'; ttl?: string; offer?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await directoryCmd()).peersPublish(home, relay, o, out, interrupt.signal)
    }), [
    'mpc-agent peers publish hub --ttl 7d --offer          # hub: a relay in `relays list`',
    'mpc-agent peers publish /ip4/203.0.113.7/tcp/41002/p2p/12D3KooW...'
  ])
  examples(peers.command('discover <relay>')
    .description('list the signed entries the directory at RELAY (a relay name or multiaddr) holds, each checked here; adds nobody to the allowlist')
    .option('--name <name>', 'only the entry of this name or peer ID')
    .action(async (relay: string, o: { name?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await directoryCmd()).peersDiscover(home, relay, o, out, interrupt.signal)
    }), [
    'mpc-agent peers discover hub',
    'mpc-agent --json peers discover hub --name alpha | mpc-agent peers import -'
  ])
  examples(peers.command('list').description('list known peers').action(async (_o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await peersCmd()).peersList(home, out)
  }), ['mpc-agent peers list', 'mpc-agent peers list --json > peers.json   # importable by `peers import`'])
  examples(peers.command('remove <name>').description('forget a peer').action(async (name: string, _o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await peersCmd()).peersRemove(home, name, out)
  }), ['mpc-agent peers remove beta'])

  examples(program.command('serve')
    .description('run the agent until SIGINT/SIGTERM, answering proposals from configured buyers; SIGHUP reloads config.yaml')
    .option('--ready-file <path>', 'write {pid, peerId, addrs} as JSON here once listening')
    .action(async (o: { readyFile?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await netCmd()).serveCommand(home, o, out, interrupt.signal, hooks.serve)
    }), [
    'mpc-agent --home ~/alpha serve',
    'mpc-agent --home ~/alpha serve >> alpha.log 2>&1 &  pid=$!;  kill -HUP $pid  # reload;  kill $pid  # stop'
  ])

  examples(program.command('ping <name>')
    .description('check that a configured peer is reachable and print round-trip times')
    .option('--count <n>', 'number of pings', (v) => Number.parseInt(v, 10), 3)
    .action(async (name: string, o: { count: number }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await netCmd()).pingCommand(home, name, o, out)
    }), ['mpc-agent ping beta --count 1'])

  const query = program.command('query').description('check or run an aggregate query (buyer)')
  examples(query.command('check <file>')
    .description('validate a query file; print its canonical form, cell count and digest')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await queryCmd()).queryCheck(home, file, out)
    }), ['mpc-agent query check pickups.yaml'])
  examples(query.command('run <file>')
    .description('negotiate with every provider, run the masked sum, write the result (starts its own node)')
    .option('--out <file>', 'result file, written atomically (default: ./<query id>.<format>; "-": stdout)')
    .addOption(new Option('--format <format>', 'result format').choices(['json', 'csv']).default('json'))
    .option('--timeout <seconds>', 'bound the whole run; exit 5 when exceeded', (v) => positive(v, '--timeout'))
    .option('--retry <n>', 'retry unreachable providers n times, before negotiation only', (v) => Number.parseInt(v, 10), 0)
    .action(async (file: string, o: { out?: string; format: 'json' | 'csv'; timeout?: number; retry: number }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      const signal = o.timeout ? AbortSignal.any([interrupt.signal, timeoutSignal(o.timeout)]) : interrupt.signal
      await (await queryCmd()).queryRun(home, file, o, out, signal, hooks.buyer)
    }), [
    'mpc-agent query run pickups.yaml --out pickups.csv --format csv',
    'mpc-agent -q query run pickups.yaml --out - --format csv --timeout 600 | head',
    'mpc-agent --json query run pickups.yaml --timeout 600 | tail -1   # the result, abort or error event'
  ])

  const policy = program.command('policy').description('this provider\'s policy (policy.yaml)')
  examples(policy.command('check <file>')
    .description('would this agent\'s policy accept the query? (exit 3 with every reason if not)')
    .option('--buyer <name>', 'the buyer proposing it (default: the configured buyer)')
    .action(async (file: string, o: { buyer?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await queryCmd()).policyCheck(home, file, o, out)
    }), ['mpc-agent --home ~/alpha policy check pickups.yaml --buyer city'])

  const data = program.command('data').description('this provider\'s local datasets (never sent)')
  examples(data.command('inspect <dataset>').description('schema and row count of a configured dataset')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await dataCmd()).dataInspect(home, name, out)
    }), ['mpc-agent --home ~/alpha data inspect trips'])
  examples(data.command('preview <file>').description('this provider\'s own contribution to a query, computed locally')
    .option('--buyer <name>', 'the buyer the query comes from (default: the configured buyer)')
    .addOption(new Option('--format <format>', 'output').choices(['table', 'csv']).default('table'))
    .action(async (file: string, o: { buyer?: string; format: 'table' | 'csv' }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await dataCmd()).dataPreview(home, file, o, out)
    }), ['mpc-agent --home ~/alpha data preview pickups.yaml --format csv'])

  const audit = examples(program.command('audit').description('list the audit log (proposals, decisions, certificates, outcomes); exit 6 with a warning if it does not verify')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await auditCmd()).auditList(home, out)
    }), ['mpc-agent --home ~/alpha audit', 'mpc-agent --home ~/alpha audit show 12', 'mpc-agent --home ~/alpha audit verify'])
  examples(audit.command('show <seq>').description('one audit entry in full (an abort\'s evidence as kind, size and hash: the bundle file it names holds it), peers named')
    .action(async (seq: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await auditCmd()).auditShow(home, seq, out)
    }), ['mpc-agent --home ~/alpha audit show 12'])
  examples(audit.command('verify').description('check the hash chain and the signed head; exit 6 if the log was altered')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await auditCmd()).auditVerify(home, out)
    }), ['mpc-agent --home ~/alpha audit verify && echo intact'])

  const evidence = program.command('evidence').description('evidence of aborted runs (README "Evidence")')
  examples(evidence.command('verify <file>')
    .description('check an abort\'s evidence bundle offline: signatures, session, who said what, what it proves (exit 8: accusation unproven, 9: invalid)')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { out } = ctx(cmd)
      ;(await evidenceCmd()).evidenceVerify(file, out)
    }), ['mpc-agent evidence verify ./pickups.json.evidence.json', 'mpc-agent evidence verify ~/alpha/evidence/<session>-<time>.json'])
  examples(program.command('budget')
    .description('privacy budget (policy privacy:): spent, reserved and remaining per buyer and data source')
    .option('--buyer <name>', 'one buyer (configured name or peer ID)')
    .action(async (o: { buyer?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await budgetCmd()).budgetShow(home, o, out)
    }), ['mpc-agent --home ~/alpha budget', 'mpc-agent --home ~/alpha --json budget --buyer city'])
  const pins = program.command('pins').description('differencing pins: the provider set this agent served per data source (policy differencing_window_s)')
  examples(pins.command('list').description('list the live pins')
    .action(async (_o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await pinsCmd()).pinsList(home, out)
    }), ['mpc-agent --home ~/alpha pins list', 'mpc-agent --home ~/alpha --json pins list'])
  examples(pins.command('clear').description('remove pins (e.g. for a provider that left for good); recorded in the audit log')
    .option('--proposal <id>', 'the pins of one run, by proposal digest (prefix of 8+ hex digits)')
    .option('--group <group>', 'every pin of one group, as listed (e.g. group:default)')
    .option('--all', 'every pin')
    .action(async (o: { proposal?: string; group?: string; all?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await pinsCmd()).pinsClear(home, o, out)
    }), ['mpc-agent --home ~/alpha pins clear --proposal 3f2a9c1e', 'mpc-agent --home ~/alpha pins clear --group group:default'])

  examples(program.command('approve [id]')
    .description('approve a proposal waiting for manual approval in the running serve (no id: list them)')
    .action(async (id: string | undefined, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await approveCmd()).decideCommand(home, id, true, out)
    }), ['mpc-agent --home ~/gamma approve             # list waiting proposals', 'mpc-agent --home ~/gamma approve 3f2a9c01b7de'])
  examples(program.command('reject <id>')
    .description('reject a proposal waiting for manual approval')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await approveCmd()).decideCommand(home, id, false, out)
    }), ['mpc-agent --home ~/gamma reject 3f2a9c01b7de'])

  // --- relays (README "Across firewalls") ------------------------------------------------------
  const relay = program.command('relay').description('run a circuit relay for agents behind NAT (its own --home, identity and allowlist)')
  examples(relay.command('init').description('create the relay\'s identity and relay.yaml (allowlist, limits)')
    .requiredOption('--name <name>', 'the relay\'s name (required)')
    .option('--listen <multiaddr>', 'listen address (repeatable; default /ip4/127.0.0.1/tcp/41002)', collect)
    .option('--announce <multiaddr>', 'address members should dial, when it differs from --listen (repeatable)', collect)
    .option('--force', 'replace an existing relay identity and relay.yaml')
    .action(async (o: { name: string; listen?: string[]; announce?: string[]; force?: boolean }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await relayCmd()).relayInit(home, o, out)
    }), ['mpc-agent --home ~/relay relay init --name hub --listen /ip4/0.0.0.0/tcp/41002 --announce /dns4/relay.example/tcp/41002'])
  examples(relay.command('allow <name> <peer-id>').description('let a peer reserve a slot and connect through this relay (SIGHUP a running relay)')
    .action(async (name: string, peerId: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await relayCmd()).relayAllow(home, name, peerId, out)
    }), ['mpc-agent --home ~/relay relay allow alpha 12D3KooW...'])
  examples(relay.command('remove <name>').description('remove a member from the relay\'s allowlist')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await relayCmd()).relayRemove(home, name, out)
    }), ['mpc-agent --home ~/relay relay remove alpha'])
  examples(relay.command('list').description('members and limits').action(async (_o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await relayCmd()).relayList(home, out)
  }), ['mpc-agent --home ~/relay relay list'])
  examples(relay.command('id').description('the relay\'s peer ID and the addresses members put in `relays add`').action(async (_o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await relayCmd()).relayId(home, out)
  }), ['mpc-agent --home ~/relay relay id'])
  examples(relay.command('serve').description('run the relay until SIGINT/SIGTERM; SIGHUP reloads the allowlist')
    .option('--ready-file <path>', 'write {pid, peerId, addrs} as JSON here once listening')
    .action(async (o: { readyFile?: string }, cmd: Command) => {
      const { home, out } = ctx(cmd)
      await (await relayCmd()).relayServe(home, o, out, interrupt.signal)
    }), ['mpc-agent --home ~/relay relay serve'])
  const relays = program.command('relays').description('the relays this agent listens through when it cannot be dialled directly')
  examples(relays.command('add <name> <multiaddr>').description('listen through this relay (its address from `relay id`, ending in /p2p/<relay-id>)')
    .action(async (name: string, addr: string, _o: unknown, cmd: Command) => {
      const { home, out } = ctx(cmd)
      ;(await relayCmd()).relaysAdd(home, name, addr, out)
    }), ['mpc-agent relays add hub /dns4/relay.example/tcp/41002/p2p/12D3KooW...'])
  examples(relays.command('list').description('list configured relays').action(async (_o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await relayCmd()).relaysList(home, out)
  }), ['mpc-agent relays list'])
  examples(relays.command('remove <name>').description('stop using a relay').action(async (name: string, _o: unknown, cmd: Command) => {
    const { home, out } = ctx(cmd)
    ;(await relayCmd()).relaysRemove(home, name, out)
  }), ['mpc-agent relays remove hub'])

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are successes; everything else commander already printed
      code = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? EXIT.ok : EXIT.usage
    } else if (interrupt.signal.aborted) {
      const sig = (interrupt.signal.reason as { signal?: string }).signal
      code = sig === 'SIGINT' ? EXIT.sigint : EXIT.sigterm
      // the scripting contract: even an interrupted run ends with one end event
      const g = program.opts<Globals>()
      new Output({ json: !!g.json, quiet: !!g.quiet, verbose: !!g.verbose }).error(`interrupted by ${sig ?? 'a signal'}`, code, err)
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
