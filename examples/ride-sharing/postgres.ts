// `--source postgres`: each company's trips loaded from its Parquet file into a table of the
// PostgreSQL database named by MPC_EXAMPLE_PG_URL (a role that may CREATE TABLE there), so the
// company's agent serves the table and the aggregation runs in the database. The verification
// still reads the Parquet files: the database path must give the same totals.
import { DuckDBInstance } from '@duckdb/node-api'
import pg from 'pg'

const PG_TYPES: Record<string, string> = { VARCHAR: 'text', TIMESTAMP: 'timestamp', INTEGER: 'integer', BIGINT: 'bigint', DOUBLE: 'double precision' }
const q = (s: string): string => `"${s.replace(/"/g, '""')}"`

/** Create (or replace) `table` with the Parquet file's columns and rows. */
export async function loadIntoPostgres(url: string, file: string, table: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const src = `read_parquet('${file.replace(/'/g, "''")}')`
    const cols = (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`)).getRows().map((r) => ({ name: String(r[0]), type: PG_TYPES[String(r[1])] ?? 'text' }))
    await client.query(`DROP TABLE IF EXISTS ${q(table)}`)
    await client.query(`CREATE TABLE ${q(table)} (${cols.map((x) => `${q(x.name)} ${x.type}`).join(', ')})`)
    const result = await c.stream(`SELECT ${cols.map((x) => `CAST(${q(x.name)} AS VARCHAR)`).join(', ')} FROM ${src}`)
    for (;;) {
      const chunk = await result.fetchChunk()
      if (!chunk || chunk.rowCount === 0) break
      const rows = chunk.getRows()
      for (let i = 0; i < rows.length; i += 1000) {
        const params: unknown[] = []
        const tuples = rows.slice(i, i + 1000).map((r) => `(${r.map((v) => { params.push(v); return `$${params.length}` }).join(', ')})`)
        await client.query(`INSERT INTO ${q(table)} VALUES ${tuples.join(', ')}`, params)
      }
    }
  } finally {
    await client.end()
    c.closeSync()
    db.closeSync()
  }
}
