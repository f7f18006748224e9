/* vector_regs: holds a pattern in xmm0-15 (ymm0-15 with AVX) and a non-default MXCSR while it
 * waits in a raw pause() loop that touches no vector register; on SIGUSR1 checks that every one
 * is as it was: PASS or FAIL: lines. For dumps that must leave the FPU/vector state alone, also
 * when amber dies in the middle (the parked threads' sigreturn puts it back). */
#include "target.h"
#include <stdint.h>

#define NREGS 16

static uint8_t want[NREGS][32], got[NREGS][32];
static uint32_t mxcsr_want = 0x7f80 | 0x6000, mxcsr_got; /* all exceptions masked, round toward zero */

#define LOAD(n, w) "vmovdqu " #n "*32(%[w]), %%ymm" #n "\n"
#define STORE(n, g) "vmovdqu %%ymm" #n ", " #n "*32(%[g])\n"
#define LOADX(n, w) "movdqu " #n "*32(%[w]), %%xmm" #n "\n"
#define STOREX(n, g) "movdqu %%xmm" #n ", " #n "*32(%[g])\n"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define L(n) LOAD(n, w)
#define S(n) STORE(n, g)
#define LX(n) LOADX(n, w)
#define SX(n) STOREX(n, g)
#define PAUSE_LOOP "1: mov $34, %%eax\n syscall\n cmpl $0, (%[flag])\n je 1b\n"
#define CLOBBERS "rax", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

int main(void)
{
	start(0);
	int avx = __builtin_cpu_supports("avx");
	for (int r = 0; r < NREGS; r++)
		for (int b = 0; b < 32; b++)
			want[r][b] = (uint8_t)(r * 37 + b * 11 + 1);
	printf("READY %d\n", getpid());
	fflush(stdout);
	uint32_t mxcsr_saved;
	__asm__ volatile("stmxcsr %0\n ldmxcsr %1" : "=m"(mxcsr_saved) : "m"(mxcsr_want));
	if (avx)
		__asm__ volatile(ALL(L) PAUSE_LOOP ALL(S) "stmxcsr %[m]\n"
				 : [m] "=m"(mxcsr_got) : [w] "r"(want), [g] "r"(got), [flag] "r"(&got_usr1) : CLOBBERS);
	else
		__asm__ volatile(ALL(LX) PAUSE_LOOP ALL(SX) "stmxcsr %[m]\n"
				 : [m] "=m"(mxcsr_got) : [w] "r"(want), [g] "r"(got), [flag] "r"(&got_usr1) : CLOBBERS);
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_saved));
	int width = avx ? 32 : 16;
	for (int r = 0; r < NREGS; r++)
		if (memcmp(want[r], got[r], (size_t)width))
			fail("%s%d differs", avx ? "ymm" : "xmm", r);
	if (mxcsr_got != mxcsr_want)
		fail("mxcsr is 0x%x, expected 0x%x", mxcsr_got, mxcsr_want);
	return finish();
}
