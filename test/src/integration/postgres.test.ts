import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { listShmSegments, shmRemove } from '@amber/core';
import { amberOk, cleanup, descendants, isAlive, makeTmpDir, parentOf, reap, sleep, startTarget, type Target } from '../harness';

after(cleanup);
/** A postmaster killed by a failing test leaves its SysV segment behind: those of our postmasters go. */
const postmasters = new Set<number>();
after(() => {
  const uid = postgresUser().uid;
  for (const s of listShmSegments()) if (s.nattch === 0 && s.uid === uid && postmasters.has(s.cpid)) shmRemove(s.id);
});

/** Debian's PostgreSQL 15 (package postgresql-15; .ci/run installs it without a cluster of its own). */
const PG = '/usr/lib/postgresql/15/bin';
const ROWS = 10_000;

function postgresUser(): { uid: number; gid: number } {
  const r = spawnSync('id', ['postgres'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `the postgres user (from the postgresql package): ${r.stderr}`);
  const m = /uid=(\d+).*gid=(\d+)/.exec(r.stdout)!;
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** Runs a PostgreSQL program as the postgres user (postgres refuses root). */
function asPostgres(program: string, args: string[]): string {
  const r = spawnSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', join(PG, program), ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${program} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

interface Instance {
  work: string;
  port: number;
  sock: string;
}

const psql = (db: Instance, sql: string, host = db.sock) => asPostgres('psql', ['-h', host, '-p', String(db.port), '-U', 'postgres', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
const rowsDigest = (db: Instance, host?: string) => psql(db, `select count(*), md5(string_agg(id || '=' || v, ',' order by id)) from t`, host);

/** postmaster, started on its unix socket dir and a loopback port, as its own instance; READY once it accepts connections. */
async function startPostmaster(db: Instance, name: string): Promise<Target> {
  const script = `echo READY $$; exec setpriv --reuid=postgres --regid=postgres --init-groups ${PG}/postgres -D "$1/data" -k "$1/sock" -p "$2" ` +
    '-c listen_addresses=127.0.0.1 -c autovacuum_naptime=3600';
  const t = await startTarget(name, ['-c', script, 'sh', db.work, String(db.port)], { binary: '/bin/sh', workdir: db.work, owner: postgresUser().uid });
  postmasters.add(t.pid);
  // its log says so (a probe connected while it starts up would log a FATAL)
  await waitFor(() => readFileSync(t.logPath, 'utf8').includes('database system is ready to accept connections'), 30_000, 'postgres accepts connections');
  return t;
}

/** The postmaster's children once no backend is left: checkpointer, background writer, WAL writer, launchers. */
async function settledTree(t: Target): Promise<number[]> {
  const cmdline = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      return 'gone';
    }
  };
  const names = (pids: number[]) => pids.slice(1).map(cmdline).sort();
  const tree = () => {
    try {
      return descendants(t.pid);
    } catch {
      return []; // a backend ended while the tree was walked
    }
  };
  const want = ['postgres: autovacuum launcher', 'postgres: background writer', 'postgres: checkpointer', 'postgres: logical replication launcher', 'postgres: walwriter'];
  await waitFor(() => JSON.stringify(names(tree())) === JSON.stringify(want), 30_000, 'the postmaster tree without backends');
  return descendants(t.pid);
}

async function stopPostmaster(db: Instance, pids: number[]): Promise<void> {
  asPostgres('pg_ctl', ['-D', join(db.work, 'data'), 'stop', '-m', 'fast', '-w', '-t', '60']);
  for (const pid of pids) if (parentOf(pid) === process.pid) await reap(pid);
  for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} ended with the server`);
}

const seconds = (stdout: string, verb: string) => Number(new RegExp(`${verb} .* in ([0-9.]+) s`).exec(stdout)?.[1]);

test('PostgreSQL: the whole postmaster tree is dumped and restored; rows are kept, new ones commit and survive a clean stop and restart', async (t) => {
  const { uid, gid } = postgresUser();
  const work = makeTmpDir('postgres');
  chownSync(work, uid, gid);
  const db: Instance = { work, port: await freeLoopbackPort(), sock: join(work, 'sock') };
  mkdirSync(db.sock);
  chownSync(db.sock, uid, gid);
  asPostgres('initdb', ['-D', join(work, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const pg = await startPostmaster(db, 'postgres');
  psql(db, `create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, ${ROWS}) g`);
  const digest = rowsDigest(db);
  assert.match(digest, new RegExp(`^${ROWS}\\|[0-9a-f]{32}$`));
  const pids = await settledTree(pg);
  const segments = readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').filter((l) => new RegExp(`^\\s*\\d+\\s+\\d+\\s+\\d+\\s+\\d+\\s+${pg.pid}\\s`).test(l));
  assert.equal(segments.length, 1, 'the postmaster holds one SysV segment');

  const dir = makeTmpDir('postgres-img');
  const dumped = amberOk(['dump', '-t', String(pg.pid), '-D', dir]);
  for (const pid of pids) assert.equal((await reap(pid)).signal, 9, `pid ${pid} killed by the dump`);
  const restored = amberOk(['restore', '-D', dir, '-d']);
  for (const pid of pids) assert.ok(isAlive(pid), `pid ${pid} is back`);
  // one SysV segment, one shared anonymous area, the same /dev/shm files, in all six
  amberOk(['compare', '-t', String(pg.pid), '-D', dir]);
  t.diagnostic(`postgres tree of ${pids.length} processes: dump ${seconds(dumped.stdout, 'Dumped')} s, restore ${seconds(restored.stdout, 'Restored')} s (amber's own figures)`);

  assert.equal(rowsDigest(db), digest, 'the same rows, through the unix socket');
  assert.equal(rowsDigest(db, '127.0.0.1'), digest, 'the same rows, through the loopback port');
  psql(db, `insert into t select g, 'after restore ' || g from generate_series(${ROWS + 1}, ${ROWS + 100}) g`);
  const withNew = rowsDigest(db, '127.0.0.1');
  assert.match(withNew, new RegExp(`^${ROWS + 100}\\|`));
  await sleep(100);
  await stopPostmaster(db, pids);

  const again = await startPostmaster(db, 'postgres-again');
  assert.notEqual(again.pid, pg.pid);
  assert.equal(rowsDigest(db), withNew, 'the new rows survived a clean stop and a restart');
  await stopPostmaster(db, [again.pid]);

  for (const [target, started] of [[pg, /ready to accept connections/], [again, /was shut down at/]] as const) {
    const log = readFileSync(target.logPath, 'utf8');
    const bad = log.split('\n').filter((l) => /\b(ERROR|FATAL|PANIC|WARNING):|not properly shut down|automatic recovery/.test(l));
    assert.deepEqual(bad, [], `${target.logPath}:\n${log}`);
    assert.match(log, started, target.logPath);
    assert.match(log, /database system is shut down/, `${target.logPath}: a clean shutdown`);
  }
});
