/* sigsuspend_mask: blocks SIGUSR1 and SIGUSR2, prints READY and waits in sigsuspend() with an
 * empty mask. The kernel shows that temporary mask while it waits and puts the real one back
 * after the handler; on SIGUSR1 it checks that both are blocked again: PASS or FAIL: lines. */
#include "target.h"

int main(void)
{
	start(1);
	sigset_t more;
	sigemptyset(&more);
	sigaddset(&more, SIGUSR2);
	sigprocmask(SIG_BLOCK, &more, NULL);
	ready_and_wait();
	sigset_t now;
	sigprocmask(SIG_SETMASK, NULL, &now);
	if (!sigismember(&now, SIGUSR1))
		fail("SIGUSR1 is no longer blocked after sigsuspend");
	if (!sigismember(&now, SIGUSR2))
		fail("SIGUSR2 is no longer blocked after sigsuspend");
	return finish();
}
