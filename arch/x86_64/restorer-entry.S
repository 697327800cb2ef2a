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

/*
 * long restorer_clone_thread(void *clone_args, size_t size, void (*fn)(void *), void *arg)
 * clone3 for a thread; the new thread starts on the stack given in clone_args and calls
 * fn(arg), which never returns. The caller gets the new tid or a negative errno.
 */
	.section .text, "ax"
	.globl restorer_clone_thread
	.type restorer_clone_thread, @function
restorer_clone_thread:
	movq	%rdx, %r8	/* fn and arg survive the syscall in the child */
	movq	%rcx, %r9
	movl	$435, %eax	/* clone3 */
	syscall
	testq	%rax, %rax
	jnz	1f
	xorl	%ebp, %ebp
	andq	$-16, %rsp
	movq	%r9, %rdi
	call	*%r8
	movl	$60, %eax	/* exit: this thread only */
	xorl	%edi, %edi
	syscall
	hlt
1:	ret
	.section .note.GNU-stack,"",@progbits
