/* Userspace smoke test of target/kernel/mdraid-core.o, the kernel-target build of the core.
 *
 * The object is built for -mcmodel=kernel, whose 32-bit sign-extended addresses also fit a
 * non-PIE userspace program, so it links and runs here with the C hooks backed by malloc:
 *
 *   gcc -O2 -no-pie -o kobj_smoke kobj_smoke.c target/kernel/mdraid-core.o
 *   ./kobj_smoke SB1_IMAGE SB1_OFFSET SB0_IMAGE
 *
 * It proves the object holds working core code: checksums computed by the core match what
 * md stored in real superblocks, bad input gives -EINVAL, and every allocation is freed.
 * Run by scripts/test.sh (step kernel_smoke). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mdraid_k.h"

static long live_allocs;
static long total_allocs;

void *mdraid_k_alloc(size_t size, size_t align)
{
	void *p = NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (posix_memalign(&p, align, size ? size : 1) != 0)
		return NULL;
	live_allocs++;
	total_allocs++;
	return p;
}

void mdraid_k_free(void *ptr, size_t size, size_t align)
{
	(void)size;
	(void)align;
	free(ptr);
	live_allocs--;
}

void mdraid_k_panic(const uint8_t *file, size_t file_len, uint32_t line)
{
	fprintf(stderr, "FAIL: core panicked at %.*s:%u\n", (int)file_len, (const char *)file, line);
	abort();
}

/* The object is built with the kernel's retpoline and return thunks (kernel-build.sh): in
 * userspace they are a plain indirect jump and a plain return. */
__asm__(".globl __x86_indirect_thunk_r11\n__x86_indirect_thunk_r11:\n\tjmp *%r11\n"
	".globl __x86_return_thunk\n__x86_return_thunk:\n\tret\n");

/* Synchronous member I/O is not exercised here (assembly runs in the QEMU guest). */
int mdraid_k_dev_io(void *ctx, u32 op, u64 offset, u8 *buf, size_t len)
{
	(void)ctx;
	(void)op;
	(void)offset;
	(void)buf;
	(void)len;
	return -5;
}

static int failures;

static void expect(const char *what, int64_t got, int64_t want)
{
	if (got != want) {
		fprintf(stderr, "FAIL: %s: got %lld, want %lld\n", what, (long long)got, (long long)want);
		failures++;
	} else {
		printf("ok: %s = %lld\n", what, (long long)got);
	}
}

static int read_at(const char *path, long off, uint8_t *buf, size_t len, long *file_size)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	*file_size = ftell(f);
	if (off < 0)
		off = *file_size + off;
	if (off == -1 || fseek(f, off, SEEK_SET) != 0 || fread(buf, 1, len, f) != len) {
		fprintf(stderr, "%s: short read at %ld\n", path, off);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int main(int argc, char **argv)
{
	static uint8_t buf[4096];
	long size;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SB1_IMAGE SB1_BYTE_OFFSET SB0_IMAGE\n", argv[0]);
		return 2;
	}

	/* 1.x superblock at the given byte offset; sb_csum is at byte 216. */
	if (read_at(argv[1], atol(argv[2]), buf, sizeof(buf), &size))
		return 1;
	expect("sb1 checksum vs stored", mdraid_k_sb1_checksum(buf, sizeof(buf)), le32(buf + 216));

	/* 0.90 superblock at sector (sectors & ~127) - 128; sb_csum is at byte 152. */
	long sectors = size / 512;
	if (read_at(argv[3], ((sectors & ~127L) - 128) * 512, buf, sizeof(buf), &size))
		return 1;
	expect("sb0 checksum vs stored", mdraid_k_sb0_checksum(buf, sizeof(buf)), le32(buf + 152));

	/* Bad input. */
	memset(buf, 0xa5, sizeof(buf));
	expect("sb1 of garbage", mdraid_k_sb1_checksum(buf, sizeof(buf)), -22);
	expect("sb0 of garbage", mdraid_k_sb0_checksum(buf, sizeof(buf)), -22);
	expect("sb1 of NULL", mdraid_k_sb1_checksum(NULL, 4096), -22);
	expect("sb1 of 3 bytes", mdraid_k_sb1_checksum(buf, 3), -22);

	expect("allocations still live", live_allocs, 0);
	if (total_allocs == 0) {
		fprintf(stderr, "FAIL: the core never called mdraid_k_alloc\n");
		failures++;
	}
	printf("%s: %ld allocations through the C hooks\n", failures ? "FAIL" : "PASS", total_allocs);
	return failures ? 1 : 0;
}
