/* state [--as-nobody]: task state that lives in the kernel. Sets an interval timer, resource
 * limits, umask, personality, parent-death signal, nice value, and leaves two blocked signals
 * pending (one thread-directed SIGUSR2, one queued SIGRTMIN+2 carrying a value). With
 * --as-nobody it first drops to uid/gid 65534. Prints READY <pid>; on SIGUSR1 checks all of it
 * and prints PASS or FAIL: lines. */
#define _GNU_SOURCE
#include <sched.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PERSONA (PER_LINUX | UNAME26)
static volatile sig_atomic_t got_usr1, rt_value = -1, usr2_seen;
static int failures;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }
static void on_usr2(int sig) { (void)sig; usr2_seen++; }
static void on_rt(int sig, siginfo_t *si, void *ctx) { (void)sig; (void)ctx; rt_value = si->si_value.sival_int; }

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL: " __VA_ARGS__);                                              \
			putchar('\n');                                                             \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

int main(int argc, char **argv)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int nobody = argc > 1 && strcmp(argv[1], "--as-nobody") == 0;
	if (nobody && (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))) {
		perror("drop to nobody");
		return 2;
	}
	/* as root: give up CAP_NET_RAW everywhere (bounding set too) and CAP_SYS_NICE from the
	 * effective set only, and keep SECBIT_NO_SETUID_FIXUP */
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct caps[2];
	if (!nobody) {
		prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0);
		syscall(SYS_capget, &hdr, caps);
		caps[0].effective &= ~((1u << CAP_NET_RAW) | (1u << CAP_SYS_NICE));
		caps[0].permitted &= ~(1u << CAP_NET_RAW);
		caps[0].inheritable = 1u << CAP_CHOWN;
		prctl(PR_SET_SECUREBITS, 1 << 2 /* SECURE_NO_SETUID_FIXUP */, 0, 0, 0);
		if (syscall(SYS_capset, &hdr, caps))
			return 2;
		syscall(SYS_capget, &hdr, caps);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 2, &sa, NULL);

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR2);
	union sigval v = { .sival_int = 4242 };
	sigqueue(getpid(), SIGRTMIN + 2, v);

	struct itimerval it = { { 500, 0 }, { 1000, 0 } };
	signal(SIGALRM, SIG_IGN);
	setitimer(ITIMER_REAL, &it, NULL);
	struct rlimit nofile = { 200, 300 };
	setrlimit(RLIMIT_NOFILE, &nofile);
	umask(027);
	personality(PERSONA);
	prctl(PR_SET_PDEATHSIG, SIGWINCH);
	errno = 0;
	setpriority(PRIO_PROCESS, 0, 7);
	struct sched_param sp = { 0 };
	sched_setscheduler(0, SCHED_BATCH, &sp);

	/* two POSIX timers: a periodic one signalling a blocked SIGRTMIN+5 with a value, on the
	 * monotonic clock, and one that notifies nobody, on the real-time clock; a third is created
	 * and deleted first, so the ids have a hole */
	timer_t gone, periodic, silent;
	struct sigevent ev = { 0 };
	ev.sigev_notify = SIGEV_NONE;
	timer_create(CLOCK_REALTIME, &ev, &gone);
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGRTMIN + 5;
	ev.sigev_value.sival_int = 77;
	sigaddset(&block, SIGRTMIN + 5);
	sigprocmask(SIG_BLOCK, &block, NULL);
	if (timer_create(CLOCK_MONOTONIC, &ev, &periodic))
		return 2;
	ev.sigev_notify = SIGEV_NONE;
	if (timer_create(CLOCK_REALTIME, &ev, &silent))
		return 2;
	timer_delete(gone);
	struct itimerspec pts = { { 300, 0 }, { 600, 0 } }, sts = { { 0, 0 }, { 700, 0 } };
	timer_settime(periodic, 0, &pts, NULL);
	timer_settime(silent, 0, &sts, NULL);

	printf("READY %d\n", getpid());
	sigset_t wait_mask;
	sigprocmask(SIG_SETMASK, NULL, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	while (!got_usr1)
		sigsuspend(&wait_mask);

	struct itimerval now;
	getitimer(ITIMER_REAL, &now);
	CHECK(now.it_interval.tv_sec == 500, "itimer interval is %ld s, expected 500", (long)now.it_interval.tv_sec);
	CHECK(now.it_value.tv_sec > 900 && now.it_value.tv_sec <= 1000, "itimer has %ld s left, expected 900..1000",
	      (long)now.it_value.tv_sec);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	CHECK(rl.rlim_cur == 200 && rl.rlim_max == 300, "RLIMIT_NOFILE is %lu/%lu, expected 200/300",
	      (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
	mode_t m = umask(0);
	CHECK(m == 027, "umask is 0%o, expected 027", m);
	int p = personality(0xffffffff);
	CHECK(p == PERSONA, "personality is 0x%x, expected 0x%x", p, PERSONA);
	int pd = 0;
	prctl(PR_GET_PDEATHSIG, &pd);
	CHECK(pd == SIGWINCH, "parent-death signal is %d, expected %d", pd, SIGWINCH);
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	CHECK(nice == 7, "nice is %d, expected 7", nice);
	CHECK(sched_getscheduler(0) == SCHED_BATCH, "scheduling policy is %d, expected SCHED_BATCH", sched_getscheduler(0));
	uid_t r, e, s;
	getresuid(&r, &e, &s);
	uid_t want = nobody ? 65534 : 0;
	CHECK(r == want && e == want && s == want, "uids are %d/%d/%d, expected %d", r, e, s, want);
	struct itimerspec got;
	if (timer_gettime(periodic, &got))
		printf("FAIL: timer %ld is gone: %s\n", (long)(intptr_t)periodic, strerror(errno)), failures++;
	else {
		CHECK(got.it_interval.tv_sec == 300, "periodic timer interval %ld s, expected 300", (long)got.it_interval.tv_sec);
		CHECK(got.it_value.tv_sec > 500 && got.it_value.tv_sec <= 600, "periodic timer has %ld s left", (long)got.it_value.tv_sec);
	}
	if (timer_gettime(silent, &got))
		printf("FAIL: timer %ld is gone: %s\n", (long)(intptr_t)silent, strerror(errno)), failures++;
	else
		CHECK(got.it_value.tv_sec > 600 && got.it_value.tv_sec <= 700, "silent timer has %ld s left", (long)got.it_value.tv_sec);
	CHECK(timer_gettime(gone, &got) != 0, "the deleted timer %ld exists again", (long)(intptr_t)gone);
	if (!nobody) {
		struct __user_cap_data_struct now[2];
		syscall(SYS_capget, &hdr, now);
		CHECK(memcmp(now, caps, sizeof now) == 0, "capabilities are eff %x prm %x inh %x, expected %x %x %x", now[0].effective,
		      now[0].permitted, now[0].inheritable, caps[0].effective, caps[0].permitted, caps[0].inheritable);
		CHECK(prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0) == 0, "CAP_NET_RAW is back in the bounding set");
		CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_NICE, 0, 0, 0) == 1, "CAP_SYS_NICE left the bounding set");
		int sb = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
		CHECK(sb == 1 << 2, "securebits are 0x%x, expected 0x4", sb);
	}
	sigset_t pending;
	sigpending(&pending);
	CHECK(sigismember(&pending, SIGUSR2), "SIGUSR2 is no longer pending");
	CHECK(sigismember(&pending, SIGRTMIN + 2), "SIGRTMIN+2 is no longer pending");
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(usr2_seen == 1, "SIGUSR2 handler ran %d times after unblocking, expected 1", (int)usr2_seen);
	CHECK(rt_value == 4242, "SIGRTMIN+2 carried %d, expected 4242", (int)rt_value);
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}
