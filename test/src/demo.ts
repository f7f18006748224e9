// A guided, real checkpoint/restore of test/targets/counter.c: `npm run demo`.
import {
  amber, buildTargetsSync, cleanup, describeAmber, isAlive, makeTmpDir, parentOf, procState, readLog, reap, sleep,
  startTarget, verdict, type AmberResult, type Target,
} from './harness';

const tty = process.stdout.isTTY === true;
const bold = (s: string): string => (tty ? `\u001b[1m${s}\u001b[0m` : s);
const dim = (s: string): string => (tty ? `\u001b[2m${s}\u001b[0m` : s);

let stepNo = 0;
function step(title: string): void {
  console.log(`\n${bold(`${++stepNo}. ${title}`)}`);
}

function show(lines: string[]): void {
  for (const line of lines) console.log(`   ${line}`);
}

function runAmber(args: string[]): AmberResult {
  console.log(`   ${dim('$')} amber ${args.join(' ')}`);
  const r = amber(args);
  if (r.status !== 0) throw new Error(describeAmber(args, r));
  show(r.stdout.trimEnd().split('\n').filter((l) => l !== ''));
  return r;
}

function logLines(t: Target): string[] {
  return readLog(t).split('\n').filter((l) => l !== '');
}

function ticksOf(lines: string[]): number[] {
  return lines.flatMap((l) => {
    const m = /: tick (\d+)$/.exec(l);
    return m ? [Number(m[1])] : [];
  });
}

async function demo(): Promise<void> {
  step('Build the test programs');
  buildTargetsSync();
  show(['test/targets/bin/counter: prints a tick every 0.5 s, checks itself on SIGUSR1']);

  step('Start counter and let it run for a while');
  const t = await startTarget('counter');
  await sleep(1600);
  const before = logLines(t);
  show([`pid ${t.pid}, output in ${t.logPath}:`, ...before.slice(-3).map((l) => `  ${l}`)]);

  step('Checkpoint it');
  const dir = makeTmpDir('demo-images');
  runAmber(['dump', '-t', String(t.pid), '-D', dir]);
  const linesAtDump = logLines(t).length;
  const lastTick = Math.max(...ticksOf(logLines(t)));

  step('The process is gone');
  // We are its subreaper: the killed process waits for us as a zombie until reaped.
  const exit = await reap(t.pid);
  if (procState(t.pid) !== null) throw new Error(`pid ${t.pid} still exists after the dump`);
  show([`pid ${t.pid} ${exit.text}; /proc/${t.pid} no longer exists`]);

  step('Restore it from the images');
  runAmber(['restore', '-D', dir, '-d']);
  if (!isAlive(t.pid)) throw new Error(`pid ${t.pid} is not running after the restore`);
  const parent = parentOf(t.pid);
  show([`pid ${t.pid} is alive again (state ${procState(t.pid) ?? '?'}, parent ${parent === process.pid ? 'this demo' : parent ?? '?'})`]);

  step('It carries on counting where it stopped');
  await sleep(1600);
  const after = logLines(t).slice(linesAtDump);
  const newTicks = ticksOf(after);
  show([`last tick before the dump: ${lastTick}`, ...after.slice(0, 4).map((l) => `  ${l}`)]);
  if (newTicks.length === 0) throw new Error(`no new ticks in ${t.logPath} after the restore`);
  if (newTicks[0] !== lastTick + 1) throw new Error(`counting resumed at tick ${newTicks[0]}, expected ${lastTick + 1}`);

  step('Ask it to check itself (SIGUSR1)');
  const v = await verdict(t);
  show(v.lines.slice(-2));
  if (!v.passed) throw new Error(`counter failed its own check (${v.exit.text}): ${v.lines.join(' | ')}`);

  console.log(`\n${bold('Done:')} pid ${t.pid} was checkpointed, killed, restored with the same pid, and passed its own check.`);
}

demo()
  .then(
    () => 0,
    (err: unknown) => {
      console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    },
  )
  .then(async (code) => {
    try {
      await cleanup();
    } catch (err) {
      console.error(String(err));
      code = 1;
    }
    process.exitCode = code;
  });
