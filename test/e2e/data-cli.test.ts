// Issue #5/#7 through the real CLI: `data inspect`, `data preview` (local, never sent), and bad data
// caught before any network message with one line and exit 6.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, type DataCluster } from '../helpers/data-cluster.ts'

describe('data commands', () => {
  let dc: DataCluster
  beforeAll(async () => {
    dc = await makeDataCluster(3, 60)
  }, 120_000)
  afterAll(async () => dc?.cluster.teardown())

  it('inspect shows the schema and row count', async () => {
    const r = await dc.cluster.cli('p1', ['--json', 'data', 'inspect', 'trips'])
    expect(r.code, r.stderr).toBe(0)
    const info = JSON.parse(r.stdout) as { rows: number; columns: Array<{ name: string }> }
    expect(info.rows).toBe(60)
    expect(info.columns.map((c) => c.name)).toEqual(['zone', 'pickup_datetime', 'fare', 'license'])
  })

  it('preview computes this provider\'s own cells locally', async () => {
    const r = await dc.cluster.cli('p1', ['data', 'preview', dc.queryFile, '--format', 'csv'])
    expect(r.code, r.stderr).toBe(0)
    const rows = r.stdout.trim().split('\n')
    expect(rows[0]).toBe('zone,hour,pickups,fare')
    expect(rows).toHaveLength(1 + 5 * 24)
    const total = rows.slice(1).reduce((a, l) => a + Number(l.split(',')[2]), 0)
    expect(total).toBe(dc.data[0]?.filter((t) => t.zone <= 5).length)
  })

  it.each([
    ['a missing file', (home: string) => writeFileSync(join(home, 'config.yaml'), readFileSync(join(home, 'config.yaml'), 'utf8').replace('path: trips.csv', 'path: gone.csv')), /gone\.csv/],
    ['a missing column', (home: string) => writeFileSync(join(home, 'trips.csv'), 'zone,pickup_datetime,license\n1,2024-03-01 10:00:00,x\n'), /fare/]
  ])('%s: exit 6 with one line', async (_n, breakIt, re) => {
    const home = dc.cluster.byName('p2').home
    const cfg = readFileSync(join(home, 'config.yaml'), 'utf8')
    const csv = readFileSync(join(home, 'trips.csv'), 'utf8')
    breakIt(home)
    const r = await dc.cluster.cli('p2', ['data', 'preview', dc.queryFile])
    writeFileSync(join(home, 'config.yaml'), cfg)
    writeFileSync(join(home, 'trips.csv'), csv)
    expect(r.code).toBe(6)
    expect(r.stderr).toMatch(re)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })
})
