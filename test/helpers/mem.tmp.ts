import { runAll, setup, randomVector } from './parties.ts'
for (const N of [5, 10, 20]) {
  const s = await setup(N, 1000)
  const vectors = s.providers.map(() => randomVector(1000))
  for (let i = 0; i < 10; i++) await runAll(s, { vectors })
  const reps = 40
  const u = process.cpuUsage(); const t = performance.now()
  for (let i = 0; i < reps; i++) { const r = await runAll(s, { vectors }); if (r.buyer.status !== 'fulfilled') throw new Error('fail') }
  const du = process.cpuUsage(u)
  console.log(`N=${N}: ${((performance.now() - t) / reps).toFixed(2)} ms wall, ${((du.user + du.system) / 1000 / reps).toFixed(2)} ms CPU per run (all ${N + 1} parties, one process, memory channels)`)
}
