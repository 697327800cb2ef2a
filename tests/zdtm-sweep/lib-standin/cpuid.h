/* stand-in for criu's zdtm lib cpuid.h: cpuid() and cpuid_count() */
#ifndef ZDTM_CPUID_H__
#define ZDTM_CPUID_H__

static inline void cpuid_count(unsigned int leaf, unsigned int subleaf,
			       unsigned int *eax, unsigned int *ebx,
			       unsigned int *ecx, unsigned int *edx)
{
	asm volatile("cpuid"
		     : "=a"(*eax), "=b"(*ebx), "=c"(*ecx), "=d"(*edx)
		     : "a"(leaf), "c"(subleaf)
		     : "memory");
}

static inline void cpuid(unsigned int leaf, unsigned int *eax, unsigned int *ebx,
			 unsigned int *ecx, unsigned int *edx)
{
	cpuid_count(leaf, 0, eax, ebx, ecx, edx);
}

#endif
