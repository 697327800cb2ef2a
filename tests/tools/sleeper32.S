/*
 * sleeper32: a 32-bit (i386) program without libc, for tests/failure-cases.sh (dump/i386):
 * sleeps 10 s at a time through int $0x80, forever. Assembled by the test itself
 * (as --32, ld -m elf_i386: no 32-bit libc needed).
 */
	.globl _start
	.text
_start:
1:	movl $162, %eax		/* nanosleep */
	movl $interval, %ebx
	xorl %ecx, %ecx
	int $0x80
	jmp 1b

	.data
interval:
	.long 10, 0
