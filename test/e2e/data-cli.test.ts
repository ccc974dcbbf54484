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

  it('preview shows the operator every cleaning count for the proposed query (issue 14 §1), locally', async () => {
    const home = dc.cluster.byName('p3').home
    const csv = readFileSync(join(home, 'trips.csv'), 'utf8')
    writeFileSync(join(home, 'trips.csv'), 'zone,pickup_datetime,fare,license\n' +
      '1,2024-03-01 10:15:00,12.5,HV0001\n' + // counted
      '9,2024-03-01 10:15:00,12.5,HV0001\n' + // outside the zone domain
      '2,2024-03-01 10:15:00,,HV0001\n' + // NULL fare
      '2,2024-03-01 11:15:00,abc,HV0001\n' + // does not convert: NULL
      '2,2024-03-01 12:15:00,80,HV0001\n' + // clipped to 50
      '3,2024-03-01 12:15:00,1,HV0001,extra\n' + // malformed: skipped
      '3,not-a-time,1,HV0001\n' + // time does not convert: outside the hour domain
      '1,2024-03-01 10:45:00,1,HV0001\n') // a second row in cell (1, 10): above max_rows_per_provider 1
    const q = join(dc.dir, 'clean.yaml')
    writeFileSync(q, readFileSync(dc.queryFile, 'utf8').replace('max_rows_per_provider: 1000000', 'max_rows_per_provider: 1'))
    const r = await dc.cluster.cli('p3', ['data', 'preview', q])
    const j = await dc.cluster.cli('p3', ['--json', 'data', 'preview', q])
    writeFileSync(join(home, 'trips.csv'), csv)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('local preview (never sent): 7 rows read, 5 matched, 0 filtered out, 2 outside the domains (dropped), 1 clipped, 2 NULLs skipped, 1 cell values clamped to max_rows_per_provider 1, 1 malformed lines skipped')
    expect(r.stderr).toContain('column fare (DOUBLE): 1 values not convertible (read as NULL), 0 NaN (read as NULL), 0 infinite')
    expect(r.stderr).toContain('column pickup_datetime (TIMESTAMP): 1 values not convertible (read as NULL)')
    expect(r.stderr).toContain('aggregate fare: 2 NULLs skipped, 1 values clipped')
    expect(r.stderr).not.toContain('aggregate pickups')
    expect(r.stderr).toMatch(/reveals Σ min\(count, 1\) per cell/)
    const doc = JSON.parse(j.stdout) as { stats: Record<string, number>; cleaning: { rejectedLines: number; columns: Array<{ column: string; unconvertible: number }> } }
    expect(doc.stats).toMatchObject({ rows: 7, matched: 5, outOfDomain: 2, nullsSkipped: 2, clipped: 1, clamped: 1 })
    expect(doc.cleaning.rejectedLines).toBe(1)
  })

  it('an unknown column gets a "did you mean" against the dataset\'s columns (exit 6, one line)', async () => {
    const q = join(dc.dir, 'typo.yaml')
    writeFileSync(q, readFileSync(dc.queryFile, 'utf8').replace('column: fare', 'column: fair'))
    const r = await dc.cluster.cli('p1', ['data', 'preview', q])
    expect(r.code).toBe(6)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/column "fair" \(used in [^)]*\) is not in dataset "trips": did you mean "fare"\?/)
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
