/* Entry of the restorer blob: rdi = args, rsp = top of the blob's own stack. */
	.section .text.entry, "ax"
	.globl restorer_entry
	.type restorer_entry, @function
restorer_entry:
	andq	$-16, %rsp
	call	restorer_main
	/* restorer_main never returns; if it does, leave without running anything else. */
	movl	$231, %eax	/* exit_group */
	movl	$99, %edi
	syscall
	hlt
	.section .note.GNU-stack,"",@progbits
