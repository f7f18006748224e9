/* threads: a process of four threads, each with its own __thread value, signal mask and
 * alternate signal stack, all counting in a loop. Prints READY <pid>; on SIGUSR1 (taken by the
 * main thread, the only one that does not block it) every thread checks that its tid, TLS,
 * mask and alternate stack are what they were and that it kept counting: PASS or FAIL: lines. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 4

static volatile sig_atomic_t got_usr1;
static atomic_int checking, failures, ready_count;
static __thread uint64_t tls_id;

struct worker {
	pthread_t handle;
	int index;
	pid_t tid;
	uint64_t tls_want;
	sigset_t mask;
	stack_t alt;
	atomic_ulong counter;
	unsigned long at_ready;
};
static struct worker workers[NTHREADS];

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void check_self(struct worker *w)
{
	char name[32];
	snprintf(name, sizeof name, "thread %d", w->index);
	if ((pid_t)syscall(SYS_gettid) != w->tid) {
		printf("FAIL: %s tid is %ld, was %d\n", name, (long)syscall(SYS_gettid), w->tid);
		failures++;
	}
	if (tls_id != w->tls_want) {
		printf("FAIL: %s __thread value 0x%lx, expected 0x%lx\n", name, (unsigned long)tls_id, (unsigned long)w->tls_want);
		failures++;
	}
	sigset_t now;
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	for (int s = 1; s < 64; s++)
		if (s != SIGKILL && s != SIGSTOP && sigismember(&now, s) != sigismember(&w->mask, s)) {
			printf("FAIL: %s mask differs at signal %d\n", name, s);
			failures++;
			break;
		}
	stack_t ss;
	sigaltstack(NULL, &ss);
	if (ss.ss_sp != w->alt.ss_sp || ss.ss_size != w->alt.ss_size) {
		printf("FAIL: %s alternate stack %p+%zu, expected %p+%zu\n", name, ss.ss_sp, ss.ss_size, w->alt.ss_sp, w->alt.ss_size);
		failures++;
	}
	if (atomic_load(&w->counter) <= w->at_ready) {
		printf("FAIL: %s stopped counting (%lu)\n", name, (unsigned long)atomic_load(&w->counter));
		failures++;
	}
}

static void *run(void *arg)
{
	struct worker *w = arg;
	w->tid = (pid_t)syscall(SYS_gettid);
	w->tls_want = 0x7EAD0000ULL + (uint64_t)w->index * 0x1111;
	tls_id = w->tls_want;
	/* every thread blocks SIGUSR1 and a signal of its own */
	sigemptyset(&w->mask);
	sigaddset(&w->mask, SIGUSR1);
	sigaddset(&w->mask, SIGRTMIN + w->index);
	pthread_sigmask(SIG_SETMASK, &w->mask, NULL);
	w->alt.ss_size = 65536 + 4096 * w->index;
	w->alt.ss_sp = malloc(w->alt.ss_size);
	w->alt.ss_flags = 0;
	sigaltstack(&w->alt, NULL);
	atomic_fetch_add(&ready_count, 1);
	struct timespec ms = { 0, 1000000 };
	while (!atomic_load(&checking)) {
		atomic_fetch_add(&w->counter, 1);
		nanosleep(&ms, NULL); /* EINTR after a restore is fine */
	}
	check_self(w);
	return NULL;
}

int main(void)
{
	syscall(SYS_close_range, 3, ~0U, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	workers[0].index = 0;
	for (int i = 1; i < NTHREADS; i++) {
		workers[i].index = i;
		if (pthread_create(&workers[i].handle, NULL, run, &workers[i])) {
			perror("pthread_create");
			return 2;
		}
	}
	/* the main thread is worker 0, but leaves SIGUSR1 unblocked so it takes the signal */
	struct worker *me = &workers[0];
	me->tid = getpid();
	me->tls_want = 0x7EAD0000ULL;
	tls_id = me->tls_want;
	sigemptyset(&me->mask);
	sigaddset(&me->mask, SIGRTMIN);
	pthread_sigmask(SIG_SETMASK, &me->mask, NULL);
	me->alt.ss_size = 65536;
	me->alt.ss_sp = malloc(me->alt.ss_size);
	sigaltstack(&me->alt, NULL);
	while (atomic_load(&ready_count) < NTHREADS - 1)
		usleep(1000);
	usleep(20000);
	for (int i = 0; i < NTHREADS; i++)
		workers[i].at_ready = atomic_load(&workers[i].counter);
	printf("READY %d\n", getpid());
	struct timespec ms = { 0, 1000000 };
	while (!got_usr1) {
		atomic_fetch_add(&me->counter, 1);
		nanosleep(&ms, NULL);
	}
	usleep(20000);
	atomic_store(&checking, 1);
	check_self(me);
	for (int i = 1; i < NTHREADS; i++)
		pthread_join(workers[i].handle, NULL);
	if (atomic_load(&failures))
		return 1;
	printf("PASS\n");
	return 0;
}
