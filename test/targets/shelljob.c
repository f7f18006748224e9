/* A job run from an interactive shell on a terminal, the way an editor is: stdin/out/err are the
 * terminal, it puts the terminal in a mode of its own (no ICANON, no ECHO, VMIN 1), reads keys
 * and answers each on the terminal. Its log (argv[1]) gets READY, then its self-check.
 *
 * Keys: a line ending in Enter is answered "line: TEXT"; SIGINT (the terminal's ^C, which only
 * the foreground group gets) is answered "sigint N"; 'q' runs the self-check and exits with it:
 * the terminal is a terminal and its controlling one (its session is the terminal's), its group
 * is the terminal's foreground group and leads itself, the session is not its own (a shell's),
 * the mode it set is still the terminal's, and keys and ^C came in both before and after. It
 * prints "TTY <name>" so the test can see which terminal it ended on. */
#include "target.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

static volatile sig_atomic_t sigints;
static void on_int(int sig) { (void)sig; sigints++; }

static FILE *logf;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* raw mode: no output processing is assumed, so end lines with \r\n ourselves */
	dprintf(1, "%s\r\n", buf);
	fprintf(logf, "%s\n", buf);
	fflush(logf);
}

#define bad(...) (failures++, say("FAIL: " __VA_ARGS__))

static int lines_seen, sigints_seen;
static char lines[8][64];

static void check(const struct termios *set)
{
	failures = 0;
	for (int fd = 0; fd < 3; fd++)
		if (!isatty(fd))
			bad("fd %d is not a terminal", fd);
	const char *name = ttyname(0);
	say("TTY %s", name ? name : "?");
	if (tcgetpgrp(0) != getpgrp())
		bad("foreground group %d, mine %d", tcgetpgrp(0), getpgrp());
	if (getpgrp() != getpid())
		bad("my group %d is not led by me (%d)", getpgrp(), getpid());
	if (getsid(0) == getpid())
		bad("I lead my session: a shell job's session is its shell's");
	pid_t tty_sid;
	if (ioctl(0, TIOCGSID, &tty_sid) != 0 || tty_sid != getsid(0))
		bad("fd 0 is not my session's controlling terminal (%s)", strerror(errno));
	/* fstat of a /dev/tty fd shows /dev/tty itself: TIOCGDEV names the terminal behind it */
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
	unsigned int a = 0, b = 0;
	if (tty < 0 || ioctl(tty, TIOCGDEV, &a) || ioctl(0, TIOCGDEV, &b) || a != b)
		bad("/dev/tty is not fd 0's terminal (%s)", tty < 0 ? strerror(errno) : "another device");
	int fl = fcntl(0, F_GETFL);
	if (fl < 0 || (fl & O_NONBLOCK))
		bad("fd 0 is non-blocking (flags %#x): its mode is not the one it had", fl);
	if (tty >= 0)
		close(tty);
	struct termios now;
	if (tcgetattr(0, &now) || (now.c_lflag & (ICANON | ECHO)) != (set->c_lflag & (ICANON | ECHO)) ||
	    now.c_cc[VMIN] != set->c_cc[VMIN] || now.c_cc[VINTR] != set->c_cc[VINTR])
		bad("terminal mode lflag %#x VMIN %d, I set %#x VMIN %d", now.c_lflag, now.c_cc[VMIN], set->c_lflag, set->c_cc[VMIN]);
	if (lines_seen < 2 || strcmp(lines[0], "before") || strcmp(lines[1], "after"))
		bad("lines read: %d (%s, %s)", lines_seen, lines[0], lines_seen > 1 ? lines[1] : "-");
	if (sigints_seen < 2)
		bad("^C came %d times, expected before and after", sigints_seen);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	logf = fopen(argv[1], "a");
	if (!logf)
		die("open log");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int; /* no SA_RESTART: read() returns EINTR, so ^C is answered at once */
	sigaction(SIGINT, &sa, NULL);

	struct termios orig, raw;
	if (tcgetattr(0, &orig))
		die("tcgetattr");
	raw = orig;
	raw.c_lflag &= ~(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(0, TCSANOW, &raw))
		die("tcsetattr");
	fprintf(logf, "READY %d\n", getpid());
	fflush(logf);
	say("shelljob %d ready on %s", getpid(), ttyname(0));

	char line[64];
	int len = 0;
	for (;;) {
		char c;
		ssize_t n = read(0, &c, 1);
		if (sigints_seen != sigints) {
			sigints_seen = sigints;
			say("sigint %d", sigints_seen);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bad("read from the terminal: %s", n ? strerror(errno) : "end of file");
			break;
		}
		if (c == 'q' && len == 0)
			break;
		if (c == '\n' || c == '\r') {
			line[len] = 0;
			if (lines_seen < 8)
				snprintf(lines[lines_seen], sizeof lines[0], "%s", line);
			lines_seen++;
			say("line: %s", line);
			len = 0;
		} else if (len < (int)sizeof line - 1) {
			line[len++] = c;
		}
	}
	check(&raw);
	tcsetattr(0, TCSANOW, &orig);
	if (failures)
		return 1;
	say("PASS");
	return 0;
}
