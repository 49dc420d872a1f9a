/* SPDX-License-Identifier: GPL-2.0 */
/* mdraid_k internals shared by mdraid_k.c (disk, I/O path) and sysfs.c (md/ attributes). */
#ifndef MDRAID_KMOD_H
#define MDRAID_KMOD_H

#include <linux/module.h>
#include <linux/version.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/bio.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <linux/random.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/sched/mm.h>
#include <linux/llist.h>
#include <asm/irq_stack.h>
#include "mdraid_k.h"

#define MDR_DEPTH 64 /* blk-mq tags; the machine takes 128 requests */
#define MDR_MAX_MEMBERS 16
#define MDR_MAX_OPENS 64
#define MDR_BOUNCE (64 * 1024) /* synchronous member I/O in pieces of this */
#define MDR_MAX_SECTORS 2048

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define MDR_OPEN_ARGS struct gendisk *disk, blk_mode_t mode
#define MDR_OPEN_DISK disk
#define MDR_RELEASE_ARGS struct gendisk *disk
#else
#define MDR_OPEN_ARGS struct block_device *bdev, fmode_t mode
#define MDR_OPEN_DISK bdev->bd_disk
#define MDR_RELEASE_ARGS struct gendisk *disk, fmode_t mode
#endif

struct mdr_array;
struct mdr_mio;

struct mdr_member {
	struct mdr_array *a;
	dev_t dev;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct file *file;
#else
	struct block_device *bdev;
#endif
	char name[32];
	struct kobject kobj; /* md/dev-<name> */
	struct work_struct free_work;
};

static inline struct block_device *mdr_bdev(struct mdr_member *mem)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	return file_bdev(mem->file);
#else
	return mem->bdev;
#endif
}

struct mdr_array {
	struct list_head list;
	u32 unit;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct kobject md_kobj; /* md/; its release frees the array */
	struct kobject bm_kobj; /* md/bitmap/ */
	bool bm_added;

	struct mutex lock; /* the machine, members, configuration */
	struct mdraid_k_machine *m;
	bool running, gone, quiesce; /* quiesce: requests are held back (hot add) */
	struct mdr_member *mem[MDR_MAX_MEMBERS]; /* machine order */
	int nmem;
	struct mdr_member *cand[MDR_MAX_MEMBERS]; /* devices given, not (yet) members */
	int ncand;
	struct mdraid_k_conf conf; /* md's level, raid_disks, metadata_version, bitmap/, speeds */

	spinlock_t qlock; /* the machine's calls (bio completions make them in irq), queue */
	struct list_head queue; /* requests not yet taken by the machine */
	bool starved; /* the machine refused a request (pool full): retry after completions */
	struct work_struct work;
	struct delayed_work timer;
	u64 timer_at; /* when it is armed for (ns) */
	wait_queue_head_t wait;
	unsigned long runs;
	unsigned long ticked; /* jiffies of the machine's last clock update */
	struct mdr_mio *mio_free; /* member-I/O records kept for reuse (qlock) */
	unsigned int nmio_free;
	/* A member I/O taken out of the machine whose record or copy an atomic allocation could
	 * not give (qlock): mdr_run issues it with memory allocated unlocked. */
	struct mdraid_k_io held;
	bool has_held;

	struct mdraid_k_handle *opens[MDR_MAX_OPENS]; /* registry references of the openers */
	unsigned int nopens;
	struct work_struct del_work;
};

extern struct mutex mdr_reg_lock;
extern struct mdraid_k_reg *mdr_reg;
extern struct workqueue_struct *mdr_wq;

struct mdr_member *mdr_member_open(struct mdr_array *a, dev_t dev);
void mdr_member_close(struct mdr_member *mem);
void mdr_member_release(struct mdr_array *a, struct mdr_member *mem);
int mdr_activate(struct mdr_array *a, bool readonly);
int mdr_deactivate(struct mdr_array *a);
int mdr_hot_add(struct mdr_array *a, struct mdr_member *add);
void mdr_kick(struct mdr_array *a);
void mdr_gone(struct mdr_array *a);

void mdr_sysfs_init(void);
int mdr_sysfs_add(struct mdr_array *a);
void mdr_sysfs_del(struct mdr_array *a);

#endif
