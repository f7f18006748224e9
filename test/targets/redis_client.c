/*
 * redis_client WORKDIR: starts redis-server (its own instance: a unix socket in WORKDIR only, no
 * persistence) as its child, connects to it once, sets a key and then sends INCR in a loop on
 * that one connection, checking every reply. Prints "READY <pid>" once the loop runs, and on
 * SIGUSR1 checks on the same connection that it is still the same client (CLIENT ID), that the
 * key set before is there and that the counter went on from where it was; then shuts the server
 * down and prints PASS or FAIL: <what>, exiting 0 or 1.
 */
#include "target.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

static int conn;
static char reply[4096];

/* Sends one command (RESP array of bulk strings) and reads one reply line into `reply`. */
static const char *command(int argc, const char **argv)
{
	char req[1024];
	int n = snprintf(req, sizeof req, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++)
		n += snprintf(req + n, sizeof req - n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	for (int done = 0; done < n;) {
		ssize_t w = write(conn, req + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return NULL;
		done += w;
	}
	size_t got = 0;
	for (;;) {
		ssize_t r = read(conn, reply + got, sizeof reply - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		got += r;
		reply[got] = 0;
		char *end = strstr(reply, "\r\n");
		if (!end)
			continue;
		if (reply[0] == '$' && reply[1] != '-') {
			/* bulk string: the value follows on the next line */
			if (!strstr(end + 2, "\r\n"))
				continue;
			char *v = end + 2;
			*strstr(v, "\r\n") = 0;
			return v;
		}
		*end = 0;
		return reply + 1;
	}
}

#define CMD(...) command(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *), (const char *[]){ __VA_ARGS__ })

int main(int argc, char **argv)
{
	start(0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
		return 2;
	}
	char path[100];
	snprintf(path, sizeof path, "%s/redis.sock", argv[1]);
	pid_t server = fork();
	if (server < 0)
		die("fork");
	if (server == 0) {
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", path, "--save", "", "--appendonly", "no",
		       "--daemonize", "no", "--dir", argv[1], (char *)NULL);
		die("exec redis-server");
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	conn = socket(AF_UNIX, SOCK_STREAM, 0);
	for (int i = 0; connect(conn, (struct sockaddr *)&a, sizeof a); i++) {
		if (i > 1000)
			die("connect to redis-server");
		usleep(10000);
	}
	const char *r = CMD("SET", "before-key", "set-before-dump");
	if (!r || strcmp(r, "OK"))
		die("SET");
	r = CMD("CLIENT", "ID");
	if (!r)
		die("CLIENT ID");
	char id[64];
	snprintf(id, sizeof id, "%s", r);
	long sent = 0;
	for (; !got_usr1; sent++) {
		r = CMD("INCR", "counter");
		if (!r || atol(r) != sent + 1) {
			fail("INCR #%ld: reply %s", sent + 1, r ? r : "(connection lost)");
			break;
		}
		if (sent == 20)
			printf("READY %d\n", getpid());
		usleep(500);
	}
	r = CMD("CLIENT", "ID");
	if (!r || strcmp(r, id))
		fail("not the same connection: client id %s, was %s", r ? r : "(none)", id);
	r = CMD("GET", "before-key");
	if (!r || strcmp(r, "set-before-dump"))
		fail("before-key is %s", r ? r : "(no reply)");
	r = CMD("INCR", "counter");
	if (!r || atol(r) != sent + 1)
		fail("counter %s after %ld INCRs", r ? r : "(no reply)", sent);
	CMD("SHUTDOWN", "NOSAVE");
	int st;
	if (waitpid(server, &st, 0) != server || !WIFEXITED(st))
		fail("redis-server did not shut down");
	return finish();
}
