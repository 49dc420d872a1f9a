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
typedef uint64_t u64;
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

/* Synchronous member I/O for assembly and creation (process context): op 0 read, 1 write,
 * 2 flush, 3 write + FUA; len bytes at byte offset to/from buf (any alignment). 0 or -errno. */
int mdraid_k_dev_io(void *ctx, u32 op, u64 offset, u8 *buf, size_t len);

/* ---- registry (md's all_mddevs / md_probe / mddev_get / mddev_put) ---- */
struct mdraid_k_reg;
struct mdraid_k_handle;

struct mdraid_k_reg_info {
	u32 state; /* 0 clear, 1 inactive, 2 active */
	u32 members, holders, deleted, named;
	u8 name[32]; /* md_* name of a named array, NUL-terminated */
};

enum { MDRAID_K_OPEN_PROBE = 0, MDRAID_K_OPEN_GET = 1 };
enum {
	MDRAID_K_REG_CONFIGURE = 0, MDRAID_K_REG_RUN, MDRAID_K_REG_INACTIVE, MDRAID_K_REG_STOP,
	MDRAID_K_REG_NOTE_IOCTL, MDRAID_K_REG_ADD_MEMBER, MDRAID_K_REG_REMOVE_MEMBER,
};

struct mdraid_k_reg *mdraid_k_reg_new(u32 max_unit);
void mdraid_k_reg_free(struct mdraid_k_reg *reg);
s64 mdraid_k_reg_open(struct mdraid_k_reg *reg, u32 unit, u32 op, struct mdraid_k_handle **out);
s64 mdraid_k_reg_new_array(struct mdraid_k_reg *reg, const u8 *name, size_t len);
s64 mdraid_k_reg_put(struct mdraid_k_reg *reg, struct mdraid_k_handle *h); /* 1: removed */
s64 mdraid_k_reg_op(struct mdraid_k_reg *reg, const struct mdraid_k_handle *h, u32 op);
s64 mdraid_k_reg_info(const struct mdraid_k_reg *reg, u32 unit, struct mdraid_k_reg_info *out);

/* ---- assembly / creation: the core's blocking Array, then into_machine ---- */
struct mdraid_k_machine;

struct mdraid_k_dev_desc {
	void *ctx; /* passed to mdraid_k_dev_io, returned in ctx_out */
	u64 size;
	u32 lbs, major, minor;
	u8 name[32];
};

struct mdraid_k_create {
	u32 version; /* 0 = 0.90, 10 = 1.0, 11 = 1.1, 12 = 1.2 */
	u32 raid_disks;
	u32 bitmap; /* 0 none, 1 internal */
	u64 bitmap_chunk; /* bytes, 0 = mdadm's choice */
	u32 assume_clean;
	u8 uuid[16];
	u64 seed;
	u32 md_minor;
	u8 name[32];
};

struct mdraid_k_result {
	struct mdraid_k_machine *machine;
	void **ctx_out; /* member i's ctx, machine order */
	size_t nmembers;
	u8 *msg; /* error text, NUL-terminated */
	size_t msg_len;
};

enum { MDRAID_K_ASM_RUN = 1, MDRAID_K_ASM_FORCE = 2, MDRAID_K_ASM_READONLY = 4 };
/* Assembles what the devices carry when any has a superblock, else creates over all of them:
 * 0 assembled, 1 created, -errno with res->msg (process context; sleeps in mdraid_k_dev_io). */
s64 mdraid_k_activate(const struct mdraid_k_dev_desc *devs, size_t n, u32 flags,
		      const struct mdraid_k_create *opts, u64 mono_ns, u64 wall_secs,
		      struct mdraid_k_result *res);

/* ---- the machine (sans-IO; never sleeps: callable under a spinlock, allocating atomically) */
enum { MDRAID_K_READ = 0, MDRAID_K_WRITE, MDRAID_K_FLUSH, MDRAID_K_DISCARD };
enum { MDRAID_K_BUF_NONE = 0, MDRAID_K_BUF_CALLER, MDRAID_K_BUF_MACHINE, MDRAID_K_BUF_COPY };

struct mdraid_k_io {
	u64 id;
	u32 member, kind;
	u64 offset, len; /* bytes */
	u8 fua, preflush, buf_kind, pad;
	u64 token, buf_offset; /* MDRAID_K_BUF_CALLER */
	u8 *ptr; /* MACHINE: stable until completion; COPY: copy before the next call */
};

struct mdraid_k_event {
	u32 kind; /* 1 failed, 2 sync progress, 3 sync done, 4 dirty, 5 clean, 6 rebuilt, 7 stop */
	u32 member;
	u64 value;
	u8 text[96]; /* a kernel log line, or empty */
};

enum {
	MDRAID_K_CMD_SYNC = 1, MDRAID_K_CMD_STOP_SYNC, MDRAID_K_CMD_FAIL, MDRAID_K_CMD_REMOVE,
	MDRAID_K_CMD_STOP, MDRAID_K_CMD_SPEED, MDRAID_K_CMD_OWED_RESYNC, MDRAID_K_CMD_QUIESCE,
	MDRAID_K_CMD_SYNC_CHECK,
};

void mdraid_k_machine_free(struct mdraid_k_machine *m);
s64 mdraid_k_submit(struct mdraid_k_machine *m, u32 kind, u64 sector, u64 sectors, u32 fua,
		    u64 token, u64 *id);
/* md's read fast path: 1 the read's one member I/O in *out, nothing else to drain; 0 submitted,
 * drain; <0 as mdraid_k_submit. */
s64 mdraid_k_submit_read(struct mdraid_k_machine *m, u64 sector, u64 sectors, u64 token, u64 *id,
			 struct mdraid_k_io *out);
s64 mdraid_k_poll_io(struct mdraid_k_machine *m, struct mdraid_k_io *out);
s64 mdraid_k_io_complete(struct mdraid_k_machine *m, u64 id, int err);
/* io_complete + the request it finished: 0 none (drain); 1 *token ended with *rerr, nothing else
 * to do; 2 the same, then drain; -ENOENT unknown id. */
s64 mdraid_k_io_complete_one(struct mdraid_k_machine *m, u64 id, int err, u64 *token, int *rerr);
s64 mdraid_k_poll_completion(struct mdraid_k_machine *m, u64 *token, int *err);
s64 mdraid_k_poll_event(struct mdraid_k_machine *m, struct mdraid_k_event *out);
s64 mdraid_k_pending(struct mdraid_k_machine *m); /* 1: an I/O or event to poll */
s64 mdraid_k_poll_timeout(struct mdraid_k_machine *m, u64 *at_ns);
void mdraid_k_handle_timeout(struct mdraid_k_machine *m, u64 mono_ns, u64 wall_secs);
s64 mdraid_k_cmd(struct mdraid_k_machine *m, u32 cmd, u64 arg);
/* The array's size (sectors) to *sectors; returns bit 0 busy (I/O, sync or metadata pending),
 * bit 1 stopped. */
s64 mdraid_k_state(const struct mdraid_k_machine *m, u64 *sectors);
/* Hot add of dev to the quiesced (idle) machine: the new member's index, or -errno + msg. */
s64 mdraid_k_add(struct mdraid_k_machine *m, const struct mdraid_k_dev_desc *dev, const u8 *uuid,
		 u8 *msg, size_t msg_len);

/* ---- md/ attributes (names, formats, parsing: kmod-shim/rust/src/attrs.rs) ---- */
struct mdraid_k_conf { /* the array's configuration; changed only by mdraid_k_store */
	u32 level, raid_disks, version, bitmap;
	u64 bitmap_chunk, speed_min, speed_max;
	u32 readonly, present; /* present: set before showing array_state */
	u64 arg; /* out: new_dev's dev_t, activation read-only */
};
enum { MDRAID_K_DIR_MD = 0, MDRAID_K_DIR_BITMAP, MDRAID_K_DIR_DEV };
enum {
	MDRAID_K_DO_NEW_DEV = 1, MDRAID_K_DO_ACTIVATE, MDRAID_K_DO_INACTIVE, MDRAID_K_DO_CLEAR,
	MDRAID_K_DO_REMOVE_CANDIDATE, MDRAID_K_DO_REMOVE_MEMBER,
};
#define MDRAID_K_ATTR_ARRAY_STATE 4
s64 mdraid_k_attr_info(u32 id, u32 *dir, const u8 **name, u32 *mode); /* -ENOENT past last */
/* idx: the member's machine index for dev-<name>/, else -1; m NULL while not running. */
s64 mdraid_k_show(const struct mdraid_k_machine *m, const struct mdraid_k_conf *c, u32 id,
		  int idx, u8 *buf, size_t len); /* bytes written */
s64 mdraid_k_store(struct mdraid_k_machine *m, struct mdraid_k_conf *c, u32 id, int idx,
		   const u8 *buf, size_t len); /* 0 done, MDRAID_K_DO_*, -errno */
/* A machine that just started takes what was configured before (sync speed limits). */
s64 mdraid_k_apply_conf(struct mdraid_k_machine *m, const struct mdraid_k_conf *c);

#endif /* MDRAID_K_H */
