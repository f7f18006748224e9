export { buildTargets, buildTargetsSync } from './build';
export { amber, describeAmber, type AmberOptions, type AmberResult } from './cli';
export { cliEntry, repoRoot, targetPath, targetsBinDir, targetsDir } from './paths';
export { diffSnapshots, snapshotProc, STATUS_FIELDS, type DiffOptions, type FdEntry, type ProcSnapshot } from './proc';
export { isAlive, parentOf, procState, reap, sleep, type ExitInfo } from './reap';
export {
  becomeSubreaper, cleanup, readLog, startTarget, verdict, WORKDIR,
  type StartOptions, type Target, type Verdict,
} from './targets';
export { makeTmpDir, removeTmpDirs } from './tmp';
export { amberOk, assertOneLineError, critDecode, rewriteImage, descendants, type CritImage } from './checks';
export { mapsOf, spawnAmber, tracerOf, until, type RunningAmber } from './async-cli';
export {
  amberInHost, canPing, dropRule, inHost, inHostOk, makeHostPair, netnsExists, nftTables, rateLimit, removeAllHosts,
  type Host, type HostPair, type RunResult,
} from './netns';
export { startPeer, stopPeers, type Peer, type PeerEvent, type PeerMode, type PeerStats } from './net-peer';
