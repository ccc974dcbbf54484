import { runAll, setup, randomVector } from './parties.ts'
const N = Number(process.env.N ?? 5)
const s = await setup(N, 1000)
const vectors = s.providers.map(() => randomVector(1000))
for (let i = 0; i < 10; i++) await runAll(s, { vectors })
const reps = Number(process.env.REPS ?? 100)
for (let i = 0; i < reps; i++) await runAll(s, { vectors })
