import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { countSyscalls, summarizeProfile, type CpuProfile } from '../bench/profile';
import { alternation, BenchUsageError, comparisonCells, footnoted, formatTable, median, parseBenchArgs, ratio, summarize } from '../bench/stats';

// The bench is not part of npm test; its pure parts are, so a broken bench fails CI.
describe('bench: pure parts', () => {
  test('median of odd and even counts, order-free; none is an error', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([5]), 5);
    assert.throws(() => median([]));
  });

  test('a summary is the median time and the largest peak RSS of the rounds', () => {
    const s = summarize([
      { seconds: 1.5, peakRssKb: 100 },
      { seconds: 0.9, peakRssKb: 300 },
      { seconds: 1.1, peakRssKb: 200 },
    ]);
    assert.deepEqual(s, { seconds: 1.1, peakRssKb: 300 });
  });

  test('tools alternate within every round: amber, CRIU, amber, CRIU ...', () => {
    const order = alternation(['amber', 'CRIU'], 3).map((x) => `${x.round}:${x.tool}`);
    assert.deepEqual(order, ['0:amber', '0:CRIU', '1:amber', '1:CRIU', '2:amber', '2:CRIU']);
    assert.deepEqual(alternation(['amber'], 0), []);
  });

  test('ratio: two decimals, "-" when a figure is missing or zero', () => {
    assert.equal(ratio(1.41, 0.8), '1.76');
    assert.equal(ratio(1, undefined), '-');
    assert.equal(ratio(undefined, 1), '-');
    assert.equal(ratio(1, 0), '-');
  });

  test('a comparison row shows both tools, the ratio, peak RSS in MB; a refusal as a footnote', () => {
    const row = { what: 'dump 1 GiB', amber: { seconds: 1.5, peakRssKb: 90 * 1024 }, criu: { seconds: 0.75, peakRssKb: 8 * 1024 } };
    assert.deepEqual(comparisonCells(row), ['dump 1 GiB', '1.500', '0.750', '2.00', '90 MB', '8 MB']);
    const refused = 'refused: Error (criu/config.c:1130): Tracking memory is not available.';
    const { rows, notes } = footnoted([row, { what: 'pre-dump', amber: row.amber, criuNote: refused }, { what: 'dump after', amber: row.amber, criuNote: refused }]);
    assert.deepEqual(comparisonCells(rows[1]), ['pre-dump', '1.500', 'n/a [1]', '-', '90 MB', '-']);
    assert.equal(rows[2].criuNote, 'n/a [1]');
    assert.deepEqual(notes, [`[1] CRIU ${refused}`]);
  });

  test('tables line up and refuse a row of the wrong width', () => {
    assert.deepEqual(formatTable(['', 'a s'], [['x', '1.0'], ['longer', '10.25']]), ['          a s', 'x         1.0', 'longer  10.25']);
    assert.throws(() => formatTable(['a', 'b'], [['1']]));
  });

  test('options: scenarios, rounds, sizes; anything else is a usage error', () => {
    const d = parseBenchArgs([]);
    assert.deepEqual(d.scenarios, ['startup', 'memory', 'tree', 'threads', 'incremental']);
    assert.equal(d.rounds, 3);
    const o = parseBenchArgs(['--only', 'tree,startup', '--rounds', '5', '--sizes', '256,1024']);
    assert.deepEqual([o.scenarios, o.rounds, o.sizesMb], [['tree', 'startup'], 5, [256, 1024]]);
    assert.equal(d.imagesIn, '/dev/shm');
    assert.equal(parseBenchArgs(['--images-in', '/var/tmp']).imagesIn, '/var/tmp');
    assert.throws(() => parseBenchArgs(['--images-in', 'var/tmp']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--images-in']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--only', 'trees']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--rounds', '0']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--rounds']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--sizes', '1,x']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--fast']), BenchUsageError);
  });

  test('a profile is split by what its stacks were doing; an injection counts with its waits', () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 5] },
        { id: 2, callFrame: frame('dumpTask', 'file:///r/core/dist/engine/dump.js'), children: [3, 6] },
        { id: 3, callFrame: frame('sys', 'file:///r/core/dist/ptrace/remote-syscall.js'), children: [4] },
        { id: 4, callFrame: frame('waitForStop', 'file:///r/core/dist/ptrace/wait.js') },
        { id: 5, callFrame: frame('(garbage collector)', '') },
        { id: 6, callFrame: frame('procRead', 'file:///r/core/dist/task/proc.js'), children: [7] },
        { id: 7, callFrame: frame('syscallRaw', 'file:///r/core/dist/kernel/libc.js') },
      ],
      samples: [4, 4, 5, 7, 2],
      timeDeltas: [1000, 1000, 500, 2000, 250],
    };
    const s = summarizeProfile(p);
    assert.equal(s.totalMs, 4.75);
    assert.equal(s.byCategory.get('injected syscalls (core/ptrace/remote-*, with their stops)'), 2);
    assert.equal(s.byCategory.get('/proc reads (core/task/proc)'), 2);
    assert.equal(s.inKernelCalls.get('/proc reads (core/task/proc)'), 2);
    assert.equal(s.byCategory.get('GC'), 0.5);
    assert.equal(s.byCategory.get('engine (core/engine, core/objects)'), 0.25);
    assert.equal(s.byFunction.get('waitForStop core/ptrace/wait.js:1'), 2);
  });

  test('strace lines count per syscall, ptrace per request', () => {
    const trace = ['ptrace(PTRACE_GETREGS, 12, NULL, 0x7f) = 0', 'ptrace(PTRACE_GETREGS, 13, NULL, 0x7f) = 0', 'wait4(12, [{WIFSTOPPED(s)}], __WALL, NULL) = 12', '--- SIGCHLD {si_signo=SIGCHLD} ---', 'ptrace(PTRACE_CONT, 12, NULL, 0) = 0', ''].join('\n');
    assert.deepEqual([...countSyscalls(trace)], [['ptrace PTRACE_GETREGS', 2], ['wait4', 1], ['ptrace PTRACE_CONT', 1]]);
  });
});
