/* sleepers SECONDS: four threads block in the syscalls the kernel restarts through
 * restart_syscall (ERESTART_RESTARTBLOCK): nanosleep with a rem pointer, clock_nanosleep
 * without one, poll with a timeout and a futex wait with a timeout, each for SECONDS. Prints
 * READY <pid>; on SIGUSR1 it joins them and checks each call ended as it would untouched: the
 * sleeps with 0, poll with 0 (timed out), the futex with ETIMEDOUT, never EINTR, and none before
 * its time (CLOCK_MONOTONIC goes on across a checkpoint). PASS or FAIL: lines. */
#include "target.h"
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>

static double seconds;
static int futex_word;

struct sleeper {
	const char *name;
	long (*call)(void);
	long expected; /* 0, or -errno */
	long got;
	double elapsed;
	pthread_t thread;
};

static struct timespec duration(void)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	return ts;
}

static long ret(long r) { return r < 0 ? -errno : r; }

static long do_nanosleep(void)
{
	struct timespec req = duration(), rem;
	return ret(syscall(SYS_nanosleep, &req, &rem));
}

static long do_clock_nanosleep(void)
{
	struct timespec req = duration();
	return ret(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, NULL));
}

static long do_poll(void) { return ret(syscall(SYS_poll, NULL, 0, (int)(seconds * 1000))); }

static long do_futex(void)
{
	struct timespec t = duration();
	return ret(syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &t, NULL, 0));
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct sleeper *s = arg;
	double t0 = now();
	s->got = s->call();
	s->elapsed = now() - t0;
	return NULL;
}

int main(int argc, char **argv)
{
	start(1);
	if (argc != 2)
		return 2;
	seconds = atof(argv[1]);
	struct sleeper all[] = {
		{ "nanosleep", do_nanosleep, 0 },
		{ "clock_nanosleep", do_clock_nanosleep, 0 },
		{ "poll", do_poll, 0 },
		{ "futex", do_futex, -ETIMEDOUT },
	};
	for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++)
		if (pthread_create(&all[i].thread, NULL, run, &all[i]))
			die("pthread_create");
	ready_and_wait();
	for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++) {
		struct sleeper *s = &all[i];
		pthread_join(s->thread, NULL);
		if (s->got != s->expected)
			fail("%s returned %ld (%s), expected %ld", s->name, s->got, s->got < 0 ? strerror((int)-s->got) : "ok", s->expected);
		if (s->elapsed < seconds - 0.01)
			fail("%s ended after %.3f s, before its %.3f s", s->name, s->elapsed, seconds);
	}
	return finish();
}
