/* A boot sector for qemu's apps case (tests/apps/run-apps.sh qemu): in real mode, it prints
 * "tick N" (N = 1, 2, ...) on the first serial port, then waits two ticks of the BIOS's timer
 * count (about 110 ms, halted between the timer's interrupts), forever. Built with
 * as --32 and ld -Ttext 0x7c00 --oformat binary into the 512 bytes the BIOS loads. */
	.code16
	.globl _start
_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw $0x7c00, %sp
	xorl %ebx, %ebx /* the count */
next:
	incl %ebx
	movl %ebx, %eax
	movw $digits_end, %di /* its decimal digits, written backwards */
	movl $10, %ecx
digit:
	xorl %edx, %edx
	divl %ecx
	addb $'0', %dl
	decw %di
	movb %dl, (%di)
	testl %eax, %eax
	jnz digit
	movw $prefix, %si
	call puts
	movw %di, %si
	call puts
	movb $'\n', %al
	call putc
	sti
	movw 0x46c, %cx /* the BIOS's timer count (18.2 Hz) */
	addw $2, %cx
wait:
	hlt
	movw 0x46c, %ax
	cmpw %cx, %ax
	jne wait
	cli
	jmp next

/* puts: the string at %si up to its 0 */
puts:
	lodsb
	testb %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

/* putc: %al to COM1 once its transmitter is empty */
putc:
	movw $0x3fd, %dx
	movb %al, %ah
2:	inb %dx, %al
	testb $0x20, %al
	jz 2b
	movw $0x3f8, %dx
	movb %ah, %al
	outb %al, %dx
	ret

prefix:	.asciz "tick "
digits:	.space 12
digits_end: .byte 0
	.org 510
	.word 0xaa55
