/* The restorer blob, built flat from cr/restorer/ and embedded in the stasis binary. */
	.section .rodata
	.balign 4096
	.globl restorer_blob_start
	.globl restorer_blob_end
restorer_blob_start:
	.incbin RESTORER_BIN
restorer_blob_end:
	.section .note.GNU-stack,"",@progbits
