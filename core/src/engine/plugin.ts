import type { FdInfo, FdLink, MapsEntry, ProcStat } from '../task/proc';
import type { RemoteSyscall } from '../ptrace/remote-syscall';
import type { Tracee } from '../ptrace/tracee';
import type { CredsEntry, FileEntryMember, FownEntry, ImageStore } from '../images';
import type { SharedObjects } from '../objects/shared-objects';
import type { Logger } from './logger';
import type { FileRegistry } from './files';
import type { DumpedInodes, IdentityHolder, SharedInodes } from './inodes';
import type { TaskFds } from './task-fds';
import type { MappingKinds } from './mapping-kinds';

/** Restore phases, in the order they run. A plugin's restore() runs in the phase it names. */
export const RESTORE_PHASES = ['tree', 'namespaces', 'shared', 'resources', 'memory', 'task-state', 'resume'] as const;
export type RestorePhase = (typeof RESTORE_PHASES)[number];

/** One open file descriptor of a frozen task, as the core found it. */
export interface FdResource extends FdLink {
  pid: number;
  /** st_mode of the open file (S_IFREG, S_IFCHR, ...), from fstat through /proc/PID/fd/N. */
  mode: number;
  /** Owner of the open file. */
  uid: number;
  gid: number;
  dev: bigint;
  ino: bigint;
  rdev: bigint;
  size: bigint;
  info: FdInfo;
  /** Its owner and signal (F_GETOWN_EX / F_GETSIG), dumped by the core before the kind describes it. */
  fown?: FownEntry;
}

/**
 * The fd table is restored in these steps, each over every task before the next (CRIU's
 * file_desc_ops open / post_open): 'open' creates each description and puts it at its fd numbers,
 * 'post-open' runs the kinds' postOpen. Owners (fown, O_ASYNC) are set and parked fds closed after
 * the last step.
 */
export const FD_RESTORE_STEPS = ['open', 'post-open'] as const;
export type FdRestoreStep = (typeof FD_RESTORE_STEPS)[number];

/**
 * A kind of open file a plugin owns: regular files, pipes, eventfds, sockets... `E` is the
 * message of its member of files.img's FileEntry (EventfdFileEntry for `efd`): the kind reads and
 * writes only that; the core wraps it in the FileEntry with the description's type and id.
 */
export interface FileKind<E extends object = object> {
  /** CRIU's fd_types number, used in fdinfo and files images. */
  readonly fdType: number;
  readonly name: string;
  /** Its member of FileEntry (CRIU's field number), added to files.img's schema when the plugin loads. */
  readonly member: FileEntryMember;
  claims(fd: FdResource): boolean;
  /** Describes the open file description (called once per description, whatever its fd count). */
  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): E;
  /** Opens the description inside the task; returns the fd it got there (any number). */
  openDescription(ctx: RestoreContext, task: RestoreTask, entry: E, id: number): number;
  /**
   * Runs once every description of every task has been opened and put at its fd numbers (the
   * 'post-open' step): connect after every bind, fill queues once both ends exist, watch what only
   * another task holds. Once per description, in the task that opened it; fd is its number there.
   */
  postOpen?(ctx: RestoreContext, task: RestoreTask, entry: E, fd: number, id: number): void;
  /**
   * Restore order among kinds within each step (default 0, lower first): a kind whose description
   * refers to other fds of the task (epoll targets) opens after them.
   */
  readonly restoreOrder?: number;
  /** Differences between a live fd and its dumped description. */
  compareDescription?(live: FdResource, entry: E): FieldDifference[];
}

/**
 * A kind of mapping a plugin owns instead of mm (SysV shared memory). mm writes its VMAs as CRIU
 * does, with the kind's status bit and the object id the kind names (VmaEntry.shmid), dumps none
 * of their pages (the owner dumps the object once), and at restore, in the memory phase, hands each
 * such VMA to the kind to map at its address, in address order among the task's other mappings.
 */
export interface MappingKind {
  readonly name: string;
  /** The VmaStatus bit its VMAs carry (CRIU's VMA_AREA_SYSVIPC): one kind per bit. */
  readonly status: number;
  claims(m: MapsEntry): boolean;
  /** At dump, from mm's: what the mapping maps (VmaEntry.shmid) and how it was opened (fdflags, O_RDWR/O_RDONLY). */
  dumpMapping(ctx: DumpContext, task: DumpTask, m: MapsEntry): { shmid: bigint; fdflags: number };
  /** At restore, from mm's memory phase: maps the VMA at its address in the task (the range is free). */
  restoreMapping(ctx: RestoreContext, task: RestoreTask, vma: OwnedMapping): void;
}

/** The fields of a dumped VMA a mapping kind restores from. */
export interface OwnedMapping {
  start: bigint;
  end: bigint;
  pgoff: bigint;
  shmid: bigint;
  prot: number;
  flags: number;
  status: number;
  fdflags?: number;
}

/**
 * Which shared kernel objects a task uses (ids-<pid>.img): tasks sharing one share its id.
 * ipcNsId only for an IPC namespace other than amber's; amberSysvsemId is the ipc plugin's (the
 * SysV undo list, shared through CLONE_SYSVSEM).
 */
export interface TaskIds {
  vmId: number;
  filesId: number;
  fsId: number;
  sighandId: number;
  ipcNsId?: number;
  amberSysvsemId?: number;
}

/** A frozen task during dump. */
export interface DumpTask {
  pid: number;
  threads: number[];
  stat: ProcStat;
  /** /proc/PID/maps as it was before amber added anything. */
  maps: MapsEntry[];
  tracee: Tracee;
  remote: RemoteSyscall;
  fds: FdResource[];
  ids: TaskIds;
}

export interface DumpOptions {
  pid: number;
  imagesDir: string;
  leaveRunning?: boolean;
  /** Largest unlinked file whose contents a dump saves (bytes; default 1 MiB). */
  ghostLimit?: number;
  only?: string[];
  skip?: string[];
  plugins?: string[];
  log?: Logger;
  progress?: (done: number, total: number, what: string) => void;
  /**
   * Incremental dumps (see engine/predump.ts). `preDump`: memory only, the tree keeps running and
   * dirty-page tracking is armed in it. `prevImagesDir`: the previous (pre-)dump (relative to
   * imagesDir unless absolute); pages unchanged since it are referenced, not written.
   * `trackMem`: leave the tracking armed after a successful dump (with leaveRunning).
   */
  preDump?: boolean;
  prevImagesDir?: string;
  trackMem?: boolean;
  /** CRIU's --ext-unix-sk: unix sockets whose peer is outside the tree are dumped, not refused. */
  extUnixSk?: boolean;
  /** Dump established TCP connections (CRIU's --tcp-established); without it they are refused. */
  tcpEstablished?: boolean;
  /** Drop TCP connections still being set up, and connections a listener has not accepted (--skip-in-flight). */
  skipInFlight?: boolean;
  /**
   * How the dumped TCP connections are held from the freeze until their restore (net-tcp's
   * network lock): nftables (default; iptables when nft is missing), iptables, or skip.
   */
  networkLock?: NetworkLockMethod;
  /**
   * CRIU's --shell-job: the tree is a job of a shell outside it. The root's session and group
   * leader may be outside the tree, and a terminal whose other end is outside is recorded, not dumped.
   */
  shellJob?: boolean;
  /** CRIU's --timeout: the whole tree must be frozen within this long, else the dump fails (tree left running). */
  freezeTimeoutMs?: number;
  /** How mm moves pages into the pages file; by default copy, or writev where the file cannot be mapped (plugins/mm). */
  pagesVia?: PagesDumpPath;
}

/**
 * The task vmsplice()s its pages into a pipe and splice()s them into the pages file (splice),
 * copies them into a shared mapping of the file (copy), writev()s them into it (writev), or amber
 * copies them through /proc/PID/mem (amber).
 */
export const PAGES_DUMP_PATHS = ['splice', 'copy', 'writev', 'amber'] as const;
export type PagesDumpPath = (typeof PAGES_DUMP_PATHS)[number];
/** amber fills anonymous memory with UFFDIO_COPY (uffd), or the task preadv()s its pages (preadv). */
export const PAGES_FILL_PATHS = ['uffd', 'preadv'] as const;
export type PagesFillPath = (typeof PAGES_FILL_PATHS)[number];

export const NETWORK_LOCK_METHODS = ['nftables', 'iptables', 'skip'] as const;
export type NetworkLockMethod = (typeof NETWORK_LOCK_METHODS)[number];

export interface DumpContext {
  readonly options: DumpOptions;
  readonly store: ImageStore;
  readonly objects: SharedObjects;
  readonly tasks: DumpTask[];
  readonly log: Logger;
  /** Open file descriptions of the dump (files.img); the fd table and file mappings add to it. */
  readonly files: FileRegistry;
  /** Inodes several plugins meet (memfds, shared memory, deleted files): one id each, contents dumped once. */
  readonly inodes: DumpedInodes;
  /** A new pages-<id>.img (holding data, if given): ids are handed out by the core, for every plugin. */
  createPages(data?: Buffer): { pagesId: number; path: string };
  /** Adds to the dump statistics that end up in stats-dump and the report. */
  count(what: string, n: number): void;
  /** State kept for this dump only, under a key (prefix it with the plugin's name): made by init the first time. */
  state<T>(key: string, init: () => T): T;
  /** The description id of a file amber holds at fd of pid (a file in flight), dumped by its kind once. */
  describeFile(holder: DumpTask, pid: number, fd: number): number;
  /** Mapping kinds of the dump's plugins: the one that claims a mapping mm meets. */
  readonly mappings: MappingKinds;
}

/** A task being rebuilt during restore. */
export interface RestoreTask {
  pid: number;
  tracee: Tracee;
  remote: RemoteSyscall;
  ids: TaskIds;
  /** Its dumped credentials: files it gets are opened with them (core's asTask / openAsTask). */
  creds?: CredsEntry;
}

/** --inherit-fd fd[N]:KEY: amber's own fd N stands in for the dumped file KEY (`pipe:[INODE]`). */
export interface InheritedFd {
  fd: number;
  key: string;
}

export interface RestoreOptions {
  imagesDir: string;
  inheritFds?: InheritedFd[];
  /** CRIU's --ext-unix-sk: sockets dumped with an outside peer are reconnected to it. */
  extUnixSk?: boolean;
  detached?: boolean;
  pidfile?: string;
  skip?: string[];
  plugins?: string[];
  log?: Logger;
  progress?: (done: number, total: number, what: string) => void;
  /** Restore established TCP connections (--tcp-established), or restore them closed (--tcp-close). */
  tcpEstablished?: boolean;
  tcpClose?: boolean;
  /** Called once the whole tree runs, before a restore without `detached` waits for it to exit. */
  onRunning?: (running: { rootPid: number; pids: number[]; seconds: number }) => void;
  /** How the restore holds the connections until their sockets are live (any lock of the dump is removed whatever this says). */
  networkLock?: NetworkLockMethod;
  /**
   * CRIU's --shell-job: the tree comes back in amber's own session, its root's group the
   * foreground job of amber's terminal until it exits; outside terminals become amber's terminal.
   */
  shellJob?: boolean;
  /** How mm fills the restored memory; by default UFFDIO_COPY where the kernel allows it (plugins/mm). */
  pagesFill?: PagesFillPath;
}

export interface RestoreContext {
  readonly options: RestoreOptions;
  readonly store: ImageStore;
  readonly tasks: RestoreTask[];
  readonly log: Logger;
  readonly files: FileRegistry;
  /** Objects several holders share (memfds, shared memory): created once, fetched by the rest. */
  readonly inodes: SharedInodes;
  /** Parking fds in a task between descriptions, opening paths there as the task. */
  readonly fds: TaskFds;
  /** Address ranges a plugin must leave alone in every task (the injection scratch area). */
  reserved(task: RestoreTask): AddressRange[];
  /** State kept for this restore only, under a key (prefix it with the plugin's name): made by init the first time. */
  state<T>(key: string, init: () => T): T;
  /** An fd in task for description id, outside its fd table (a file to send in flight); left open, the core closes it. */
  openFile(task: RestoreTask, id: number): number;
  /** Mapping kinds of the restore's plugins, by the status bit of a VMA. */
  readonly mappings: MappingKinds;
}

export interface CompareOptions {
  pid: number;
  imagesDir: string;
  pages?: boolean;
  plugins?: string[];
  /** The tree was restored as a shell job (-j): its root's outside session and group are the restoring shell's now. */
  shellJob?: boolean;
}

export interface CompareContext {
  readonly options: CompareOptions;
  readonly store: ImageStore;
  readonly pids: number[];
  /** The dump's open file descriptions (files.img). */
  readonly files: FileRegistry;
  /** Live fds of a task, as the dump would have seen them. */
  liveFds(pid: number): FdResource[];
  /** Memory the kernel itself writes while the task runs (rseq areas): not a difference. */
  kernelOwned(pid: number): AddressRange[];
}

/** One field that differs: what it is, its dumped value, its live value. */
export interface FieldDifference {
  what: string;
  expected: string;
  actual: string;
}

export interface Difference {
  plugin: string;
  pid: number;
  what: string;
  expected: string;
  actual: string;
}

/**
 * A part of a plugin's restore that must wait for a later phase than its own: POSIX locks are
 * dropped by the close of *any* fd of the file in the process, and the memory phase opens and
 * closes the files it maps, so locks are taken after it.
 */
export interface LaterRestoreStep {
  readonly phase: RestorePhase;
  restore(ctx: RestoreContext): Promise<void> | void;
}

/** A resource plugin. Built-in and third-party plugins implement the same interface. */
export interface ResourcePlugin {
  readonly name: string;
  readonly phase: RestorePhase;
  readonly fileKinds?: readonly FileKind[];
  readonly mappingKinds?: readonly MappingKind[];
  dump?(ctx: DumpContext): Promise<void>;
  /**
   * Runs once the dump has succeeded (the inventory is written) or failed, while the tree is still
   * frozen: state a plugin leaves in the tasks (dirty tracking) is armed or dropped here, never
   * before the images are complete.
   */
  afterDump?(ctx: DumpContext, succeeded: boolean): Promise<void>;
  restore?(ctx: RestoreContext): Promise<void>;
  /**
   * Runs once the restored tree runs (succeeded) or, when the restore failed, once every task it
   * had made is gone: what holds the tree's resources from outside (the network lock) goes here.
   */
  afterRestore?(ctx: RestoreContext, succeeded: boolean): Promise<void>;
  /** Steps run in later phases, after every plugin's restore() of that phase. */
  readonly laterSteps?: readonly LaterRestoreStep[];
  compare?(ctx: CompareContext): Promise<Difference[]>;
  /** Who holds the shared objects this plugin knows (fds, mappings): the core checks identity across plugins. */
  identities?(ctx: CompareContext): IdentityHolder[];
  /** Address ranges this plugin will occupy in a restored task, so the core keeps out of them. */
  addressRanges?(store: ImageStore, pid: number): AddressRange[];
  /**
   * An fd amber itself left in a task (mm's dirty-tracking userfaultfd after a pre-dump): not the
   * task's state, so the fd table neither dumps nor compares it.
   */
  hidesFd?(fd: FdResource): boolean;
  /** Kernel features this plugin needs, probed on amber's own process: `amber check` runs and prints them. */
  checks?(): FeatureCheck[];
}

/** One kernel feature a plugin needs, as `amber check` shows it. */
export interface FeatureCheck {
  name: string;
  present: boolean;
  /** Without it the plugin cannot dump or restore what it owns. */
  required: boolean;
  why: string;
  detail?: string;
}

export interface AddressRange {
  start: bigint;
  end: bigint;
}

/** The DI token every plugin is registered under. */
export const RESOURCE_PLUGIN = Symbol.for('amber.ResourcePlugin');
