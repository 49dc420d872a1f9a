/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The C ABI between the kernel module and the Rust core object (target/kernel/mdraid-core.o,
 * built by scripts/kernel-build.sh from kmod-shim/rust).
 *
 * Entry points (defined by the object) return >= 0 on success and a negative errno on failure;
 * outputs are written only on success. Hooks (defined by the C side) are the only symbols the
 * object may leave undefined besides memcpy/memset/memmove/memcmp (scripts/check-kobj.sh). */
#ifndef MDRAID_K_H
#define MDRAID_K_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stddef.h>
#include <stdint.h>
typedef int64_t s64;
typedef uint32_t u32;
typedef uint8_t u8;
#endif

/* Hooks provided by the C side. */

/* Returns `size` bytes aligned to `align` (a power of two), or NULL. kmalloc for align <= 8. */
void *mdraid_k_alloc(size_t size, size_t align);
/* Frees a block from mdraid_k_alloc; size/align are those it was allocated with. */
void mdraid_k_free(void *ptr, size_t size, size_t align);
/* A panic in the core (always a bug) at file:line (not NUL-terminated). Must not return. */
void mdraid_k_panic(const u8 *file, size_t file_len, u32 line) __attribute__((noreturn));

/* Entry points provided by the core object. */

/* The checksum md would store for the 1.x superblock in buf[0..len) (0..UINT32_MAX), or -EINVAL
 * when it does not decode (bad magic/version, too short, NULL). */
s64 mdraid_k_sb1_checksum(const u8 *buf, size_t len);
/* Same for a 4096-byte 0.90 superblock. */
s64 mdraid_k_sb0_checksum(const u8 *buf, size_t len);

#endif /* MDRAID_K_H */
