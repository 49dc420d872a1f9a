// SPDX-License-Identifier: GPL-2.0
/*
 * mdraid_k: mdraid arrays as Linux block devices (/dev/mdr<N>, /dev/mdr_<name>).
 *
 * A driver of the core's array machine (mdraid::array::Machine, linked in as mdraid-core.o):
 * no RAID or metadata logic here. A block major with a probe callback (md_probe -> md_alloc:
 * opening /dev/mdrN creates the array through the core's Registry::probe); blk-mq requests
 * become machine requests, member I/O becomes bios to the members (opened exclusively by
 * dev_t); the machine's timer runs on delayed work; md's sysfs names under md/ (sysfs.c).
 * Contexts: queue_rq (BLK_MQ_F_BLOCKING) runs the machine in the submitter's context when the
 * array's mutex is free, else kicks the worker; a bio completion feeds the machine under the
 * qlock spinlock (the machine never sleeps) and kicks the worker only for further work.
 */
#include "mdraid_kmod.h"

static int mdr_major;
DEFINE_MUTEX(mdr_reg_lock);
struct mdraid_k_reg *mdr_reg;
static LIST_HEAD(mdr_arrays);
struct workqueue_struct *mdr_wq;
static struct workqueue_struct *mdr_del_wq; /* disk deletion (flushes mdr_wq) */
static struct bio_set mdr_bs; /* clones of request bios for member I/O */

/* ---- hooks the core calls ---- */

#ifndef CONFIG_PREEMPT_COUNT
#error "mdraid_k tells atomic from sleeping callers of the core with in_atomic()"
#endif
/* The machine runs under a spinlock (and in irq context): allocations there are atomic. */
static bool mdr_atomic(void)
{
	return in_atomic() || irqs_disabled();
}

void *mdraid_k_alloc(size_t size, size_t align)
{
	if (align > PAGE_SIZE)
		return NULL;
	if (align > 8)
		size = roundup_pow_of_two(max(size, align));
	return mdr_atomic() ? kmalloc(size, GFP_ATOMIC) : kvmalloc(size, GFP_KERNEL);
}

/* vfree may sleep: vmalloc'ed blocks freed in atomic context go to a worker. */
static LLIST_HEAD(mdr_vfree_list);

static void mdr_vfree_fn(struct work_struct *w)
{
	struct llist_node *n, *t;

	llist_for_each_safe(n, t, llist_del_all(&mdr_vfree_list))
		vfree(n);
}
static DECLARE_WORK(mdr_vfree_work, mdr_vfree_fn);

void mdraid_k_free(void *ptr, size_t size, size_t align)
{
	if (is_vmalloc_addr(ptr) && mdr_atomic()) {
		llist_add(ptr, &mdr_vfree_list);
		schedule_work(&mdr_vfree_work);
		return;
	}
	kvfree(ptr);
}

void mdraid_k_panic(const u8 *file, size_t file_len, u32 line)
{
	panic("mdraid_k: core bug at %.*s:%u\n", (int)file_len, file, line);
}

/* Synchronous member I/O through a bounce buffer (assembly, creation, hot add). */
int mdraid_k_dev_io(void *ctx, u32 op, u64 offset, u8 *buf, size_t len)
{
	struct block_device *bdev = mdr_bdev(ctx);
	u8 *bounce;
	int err = 0;

	if (op == 2)
		return blkdev_issue_flush(bdev);
	bounce = kmalloc(MDR_BOUNCE, GFP_NOIO); /* physically contiguous, page-aligned */
	if (!bounce)
		return -ENOMEM;
	while (len && !err) {
		size_t n = min_t(size_t, len, MDR_BOUNCE);
		blk_opf_t opf = op == 0 ? REQ_OP_READ : REQ_OP_WRITE | REQ_SYNC;
		struct bio *bio;
		size_t done;

		if (op == 3 && n == len)
			opf |= REQ_FUA;
		bio = bio_alloc(bdev, MDR_BOUNCE / PAGE_SIZE, opf, GFP_KERNEL);
		bio->bi_iter.bi_sector = offset >> SECTOR_SHIFT;
		if (op != 0)
			memcpy(bounce, buf, n);
		for (done = 0; done < n; done += PAGE_SIZE)
			__bio_add_page(bio, virt_to_page(bounce + done),
				       min_t(size_t, PAGE_SIZE, n - done), 0);
		err = submit_bio_wait(bio);
		bio_put(bio);
		if (!err && op == 0)
			memcpy(buf, bounce, n);
		buf += n;
		offset += n;
		len -= n;
	}
	kfree(bounce);
	return err;
}

/* ---- a big stack for the core's blocking paths ----
 * Assembly and creation (Array::assemble/create, into_machine) keep whole arrays and 4 KiB
 * superblocks on the stack: deeper than a 16 KiB kernel stack. They run on a vmalloc'ed stack
 * of their own (the kernel's call_on_stack, as the irq stacks use it); they may sleep there. */
#define MDR_BIG_STACK (128 * 1024)

struct mdr_big {
	const struct mdraid_k_dev_desc *devs;
	size_t n;
	u32 flags;
	const struct mdraid_k_create *create; /* NULL: a hot add */
	struct mdraid_k_result *res;
	struct mdraid_k_machine *m;
	const u8 *uuid;
	u8 *msg;
	s64 ret;
};

static void mdr_big_fn(struct mdr_big *b)
{
	if (b->create)
		b->ret = mdraid_k_activate(b->devs, b->n, b->flags, b->create, ktime_get_coarse_ns(),
					   ktime_get_real_seconds(), b->res);
	else
		b->ret = mdraid_k_add(b->m, b->devs, b->uuid, b->msg, 256);
}

static s64 mdr_big_call(struct mdr_big *b)
{
	void *stack = vmalloc(MDR_BIG_STACK);
	void *top; /* not `tos`: call_on_stack has its own */

	if (!stack)
		return -ENOMEM;
	top = stack + MDR_BIG_STACK - 16;
	call_on_stack(top, mdr_big_fn, ASM_CALL_ARG1, , [arg1] "r"(b));
	vfree(stack);
	return b->ret;
}

/* ---- member devices ---- */

struct mdr_member *mdr_member_open(struct mdr_array *a, dev_t dev)
{
	struct mdr_member *mem = kzalloc(sizeof(*mem), GFP_KERNEL);
	int err;

	if (!mem)
		return ERR_PTR(-ENOMEM);
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	mem->file = bdev_file_open_by_dev(dev, BLK_OPEN_READ | BLK_OPEN_WRITE, a, NULL);
	err = IS_ERR(mem->file) ? PTR_ERR(mem->file) : 0;
#else
	mem->bdev = blkdev_get_by_dev(dev, FMODE_READ | FMODE_WRITE | FMODE_EXCL, a);
	err = IS_ERR(mem->bdev) ? PTR_ERR(mem->bdev) : 0;
#endif
	if (err) {
		kfree(mem);
		return ERR_PTR(err);
	}
	mem->a = a;
	mem->dev = dev;
	snprintf(mem->name, sizeof(mem->name), "%pg", mdr_bdev(mem));
	return mem;
}

void mdr_member_close(struct mdr_member *mem)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	bdev_fput(mem->file);
#else
	blkdev_put(mem->bdev, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
#endif
}

static void mdr_desc(struct mdr_member *mem, struct mdraid_k_dev_desc *d)
{
	*d = (struct mdraid_k_dev_desc){ .ctx = mem, .size = bdev_nr_bytes(mdr_bdev(mem)),
		.lbs = bdev_logical_block_size(mdr_bdev(mem)), .major = MAJOR(mem->dev),
		.minor = MINOR(mem->dev) };
	strscpy(d->name, mem->name, sizeof(d->name));
}

/* ---- the I/O path ---- */

struct mdr_mio {
	struct mdr_array *a;
	struct block_device *bdev; /* the member's, found under qlock (a->mem moves on a remove) */
	struct mdraid_k_io io;
	void *copy; /* copy of a metadata image */
	struct mdr_mio *next; /* on the array's free list */
};

static void mdr_run(struct mdr_array *a, struct request *rq);

/* A request's driver data. */
struct mdr_cmd {
	struct list_head node; /* in the array's queue; first: the pdu is the node */
	unsigned long acct_start; /* jiffies, when acct */
	bool acct; /* counted in the disk's statistics by the shim */
};

/* Adds rq (if any) to the array's queue (qlock held). */
static void mdr_enqueue(struct mdr_array *a, struct request *rq)
{
	if (rq)
		list_add_tail(&((struct mdr_cmd *)blk_mq_rq_to_pdu(rq))->node, &a->queue);
}

/* Disk statistics as md keeps them for its bios: counted at start and end in jiffies, no
 * clock read per request. The block layer's own per-request accounting (queue/iostats) is
 * off by default (mdr_quiet_queue); a user who turns it on gets it instead of this. */
static void mdr_acct_start(struct mdr_array *a, struct request *rq)
{
	struct mdr_cmd *cmd = blk_mq_rq_to_pdu(rq);
	enum req_op op = req_op(rq);

	cmd->acct = blk_rq_bytes(rq) && !blk_queue_io_stat(rq->q) &&
		    (op == REQ_OP_READ || op == REQ_OP_WRITE || op == REQ_OP_DISCARD);
	if (!cmd->acct)
		return;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	cmd->acct_start = bdev_start_io_acct(a->disk->part0, op, jiffies);
#else
	cmd->acct_start = bdev_start_io_acct(a->disk->part0, blk_rq_sectors(rq), op, jiffies);
#endif
}

/* Ends a request the machine took or refused. */
static void mdr_end_rq(struct mdr_array *a, struct request *rq, blk_status_t status)
{
	struct mdr_cmd *cmd = blk_mq_rq_to_pdu(rq);

	if (cmd->acct) {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
		bdev_end_io_acct(a->disk->part0, req_op(rq), blk_rq_sectors(rq), cmd->acct_start);
#else
		bdev_end_io_acct(a->disk->part0, req_op(rq), cmd->acct_start);
#endif
	}
	blk_mq_end_request(rq, status);
}

/* queue_rq from a flush of the submitter's plug, outside submit_bio (every fio read, and 6.1
 * plugs every block-device write): member bios would join the plug being flushed, so they go
 * to a plug of ours, flushed before the outer one is put back (mdr_plug_end). Never no plug:
 * 6.12's context switch clears the plug's time stamp when PF_BLOCK_TS is set, without a NULL
 * check. Returns the outer plug, or NULL. */
static struct blk_plug *mdr_plug_begin(struct blk_plug *inner)
{
	struct blk_plug *outer = NULL;

	if (current->plug && !current->bio_list) {
		swap(outer, current->plug);
		blk_start_plug(inner);
	}
	return outer;
}

static void mdr_plug_end(struct blk_plug *outer, struct blk_plug *inner)
{
	if (outer) {
		blk_finish_plug(inner);
		current->plug = outer;
	}
}

/* Queues rq (if any) and runs the machine; with try (queue_rq) only if the mutex is free (else
 * the worker runs it). */
static void mdr_run_locked(struct mdr_array *a, bool try, struct request *rq)
{
	struct blk_plug *plug = NULL, inner;
	unsigned int noio;

	if (try && !mutex_trylock(&a->lock)) {
		spin_lock_irq(&a->qlock);
		mdr_enqueue(a, rq);
		spin_unlock_irq(&a->qlock);
		mdr_kick(a);
		return;
	}
	if (!try)
		mutex_lock(&a->lock);
	if (try)
		plug = mdr_plug_begin(&inner);
	noio = memalloc_noio_save();
	mdr_run(a, rq);
	memalloc_noio_restore(noio);
	mdr_plug_end(plug, &inner);
	mutex_unlock(&a->lock);
}

static struct mdr_mio *mdr_take(struct mdr_array *a, struct mdraid_k_io *io, struct mdr_mio *pre,
				void *precopy);
static void mdr_issue(struct mdr_array *a, struct mdr_mio *mio);

/* md's read fast path: a read with nothing queued before it, on a machine whose clock is
 * current, is submitted and its one member read taken out under one qlock round trip, without
 * the mutex or a drain (mdraid_k_submit_read). false: rq was not submitted (mdr_run does). */
static bool mdr_fast_read(struct mdr_array *a, struct request *rq)
{
	struct blk_plug *plug, inner;
	struct mdraid_k_io io;
	struct mdr_mio *mio = NULL;
	u64 id;
	s64 r;

	spin_lock_irq(&a->qlock);
	if (!a->m || a->quiesce || a->starved || a->has_held || READ_ONCE(a->ticked) != jiffies ||
	    !list_empty(&a->queue)) {
		spin_unlock_irq(&a->qlock);
		return false;
	}
	r = mdraid_k_submit_read(a->m, blk_rq_pos(rq), blk_rq_sectors(rq), (uintptr_t)rq, &id, &io);
	if (r == 1)
		mio = mdr_take(a, &io, NULL, NULL);
	spin_unlock_irq(&a->qlock);
	if (r < 0)
		return false; /* mdr_run submits it again and handles the refusal */
	if (!mio) { /* outputs to drain, the I/O ended at once or is held */
		mdr_run_locked(a, true, NULL);
		return true;
	}
	plug = mdr_plug_begin(&inner);
	mdr_issue(a, mio);
	mdr_plug_end(plug, &inner);
	return true;
}

/* BLK_MQ_F_BLOCKING: the submitter's context feeds the machine and issues the member bios. */
static blk_status_t mdr_queue_rq(struct blk_mq_hw_ctx *hctx, const struct blk_mq_queue_data *bd)
{
	struct mdr_array *a = hctx->queue->queuedata;

	blk_mq_start_request(bd->rq);
	if (!READ_ONCE(a->running))
		return BLK_STS_IOERR;
	mdr_acct_start(a, bd->rq);
	if (req_op(bd->rq) != REQ_OP_READ || !mdr_fast_read(a, bd->rq))
		mdr_run_locked(a, true, bd->rq);
	return BLK_STS_OK;
}

static enum blk_eh_timer_return mdr_timeout(struct request *rq)
{
	return BLK_EH_RESET_TIMER; /* the machine retries and fails members on its own */
}

static const struct blk_mq_ops mdr_mq_ops = {
	.queue_rq = mdr_queue_rq,
	.timeout = mdr_timeout,
};

/* The machine's timer on delayed work (qlock held). */
static void mdr_arm(struct mdr_array *a)
{
	u64 at, now;

	if (mdraid_k_poll_timeout(a->m, &at) != 1 ||
	    (at >= a->timer_at && delayed_work_pending(&a->timer)))
		return; /* armed already for then or earlier */
	now = ktime_get_coarse_ns();
	a->timer_at = at;
	mod_delayed_work(mdr_wq, &a->timer, at > now ? max(1UL, nsecs_to_jiffies(at - now)) : 0);
}

/* A member bio ended (irq context): into the machine, and the requests it finished end here;
 * what else the machine wants done (member I/O, notices, held requests) goes to the worker. */
static void mdr_end_io(struct bio *bio)
{
	struct mdr_mio *mio = bio->bi_private;
	struct mdr_array *a = mio->a;
	void *copy = mio->copy;
	unsigned long flags;
	bool more;
	u64 tok;
	int err;
	s64 r;

	spin_lock_irqsave(&a->qlock, flags);
	r = mdraid_k_io_complete_one(a->m, mio->io.id, blk_status_to_errno(bio->bi_status), &tok,
				     &err);
	if (r > 0)
		mdr_end_rq(a, (struct request *)(uintptr_t)tok, err ? BLK_STS_IOERR : 0);
	if (r == 1) { /* md's read fast path: that was all */
		more = a->starved;
	} else {
		while (mdraid_k_poll_completion(a->m, &tok, &err) == 1)
			mdr_end_rq(a, (struct request *)(uintptr_t)tok, err ? BLK_STS_IOERR : 0);
		more = a->starved || mdraid_k_pending(a->m);
		if (!more)
			mdr_arm(a);
	}
	a->runs++;
	if (a->nmio_free < 2 * MDR_DEPTH) { /* kept: no allocation per I/O once warm */
		mio->next = a->mio_free;
		a->mio_free = mio;
		a->nmio_free++;
		mio = NULL;
	}
	spin_unlock_irqrestore(&a->qlock, flags);
	bio_put(bio);
	kfree(copy);
	kfree(mio);
	if (more)
		mdr_kick(a);
	if (wq_has_sleeper(&a->wait))
		wake_up_all(&a->wait);
}

/* Adds [p, p + n) of page pg to *bio; a full bio is chained to a new one and submitted. */
static void mdr_add(struct bio **bio, struct page *pg, unsigned int n, unsigned int off)
{
	struct bio *next;

	if (bio_add_page(*bio, pg, n, off) == n)
		return;
	next = bio_alloc((*bio)->bi_bdev, BIO_MAX_VECS, (*bio)->bi_opf, GFP_NOIO);
	next->bi_iter.bi_sector = bio_end_sector(*bio);
	bio_chain(*bio, next);
	submit_bio(*bio);
	*bio = next;
	__bio_add_page(next, pg, n, off);
}

/* The caller's request memory covering [buf_offset, + len): clones of the request's bios
 * (sharing their pages), trimmed and chained; returns the last (the chain's end). */
static struct bio *mdr_clone_caller(struct mdraid_k_io *io, struct block_device *bdev,
				    blk_opf_t opf)
{
	struct request *rq = (struct request *)(uintptr_t)io->token;
	u64 skip = io->buf_offset, len = io->len, sector = io->offset >> SECTOR_SHIFT;
	struct bio *b, *c, *last = NULL;

	__rq_for_each_bio(b, rq) {
		if (!len)
			break;
		if (skip >= b->bi_iter.bi_size) {
			skip -= b->bi_iter.bi_size;
			continue;
		}
		c = bio_alloc_clone(bdev, b, GFP_NOIO, &mdr_bs);
		bio_trim(c, skip >> SECTOR_SHIFT, min(b->bi_iter.bi_size - skip, len) >> SECTOR_SHIFT);
		c->bi_opf = opf;
		c->bi_iter.bi_sector = sector;
		sector += bio_sectors(c);
		len -= c->bi_iter.bi_size;
		skip = 0;
		if (last) {
			bio_chain(last, c);
			submit_bio(last);
		}
		last = c;
	}
	return last;
}

static int mdr_fail_atomic; /* tests: every Nth atomic allocation of mdr_take fails */
module_param_named(fail_atomic, mdr_fail_atomic, int, 0644);
static unsigned long mdr_held; /* member I/Os held for want of atomic memory */
module_param_named(held, mdr_held, ulong, 0444);

static void *mdr_take_alloc(size_t n)
{
	static atomic_t k;
	int every = READ_ONCE(mdr_fail_atomic);

	if (every > 0 && atomic_inc_return(&k) % every == 0)
		return NULL;
	return kmalloc(n, GFP_ATOMIC);
}

/* Takes a member I/O the machine handed out (qlock held), with the record and copy given
 * (pre, precopy) or allocated atomically: NULL when it ended at once, or when that allocation
 * failed and it is held (a->held) for mdr_run, which never makes that a member error. */
static struct mdr_mio *mdr_take(struct mdr_array *a, struct mdraid_k_io *io, struct mdr_mio *pre,
				void *precopy)
{
	bool copy = io->buf_kind == MDRAID_K_BUF_COPY; /* the machine rewrites it: a copy */
	struct mdr_mio *mio = pre;

	if (io->member >= a->nmem || io->kind > MDRAID_K_FLUSH) { /* discard: nothing on a mirror */
		mdraid_k_io_complete(a->m, io->id, io->member >= a->nmem ? -ENODEV : 0);
		kfree(pre);
		kfree(precopy);
		return NULL;
	}
	if (!mio && a->mio_free) {
		mio = a->mio_free;
		a->mio_free = mio->next;
		a->nmio_free--;
	}
	if (!mio)
		mio = mdr_take_alloc(sizeof(*mio));
	if (copy && !precopy && mio)
		precopy = mdr_take_alloc(io->len);
	if (!mio || (copy && !precopy)) {
		a->held = *io;
		a->has_held = true;
		mdr_held++;
		kfree(mio);
		return NULL;
	}
	mio->copy = NULL;
	if (copy)
		io->ptr = mio->copy = memcpy(precopy, io->ptr, io->len);
	else
		kfree(precopy);
	mio->a = a;
	mio->bdev = mdr_bdev(a->mem[io->member]);
	mio->io = *io;
	return mio;
}

/* The held member I/O with memory allocated while qlock is dropped (mdr_run: process context,
 * the array's mutex held, so nobody else takes it meanwhile); qlock held again on return.
 * false: even that failed, retried from the timer. */
static bool mdr_take_held(struct mdr_array *a)
{
	struct mdraid_k_io io = a->held;
	struct mdr_mio *pre, *mio;
	void *copy = NULL;

	spin_unlock_irq(&a->qlock);
	pre = kmalloc(sizeof(*pre), GFP_NOIO);
	if (pre && io.buf_kind == MDRAID_K_BUF_COPY)
		copy = kmalloc(io.len, GFP_NOIO);
	spin_lock_irq(&a->qlock);
	if (!pre || (io.buf_kind == MDRAID_K_BUF_COPY && !copy)) {
		kfree(pre);
		kfree(copy);
		a->timer_at = 0; /* mdr_arm leaves this retry armed */
		mod_delayed_work(mdr_wq, &a->timer, 1);
		return false;
	}
	a->has_held = false;
	mio = mdr_take(a, &io, pre, copy);
	if (mio) {
		spin_unlock_irq(&a->qlock);
		mdr_issue(a, mio);
		spin_lock_irq(&a->qlock);
	}
	return true;
}

/* The member bio of a taken I/O (process context, no lock). */
static void mdr_issue(struct mdr_array *a, struct mdr_mio *mio)
{
	static const blk_opf_t ops[] = { REQ_OP_READ, REQ_OP_WRITE, REQ_OP_WRITE | REQ_PREFLUSH };
	struct mdraid_k_io *io = &mio->io;
	blk_opf_t opf = ops[io->kind] | (io->fua ? REQ_FUA : 0) | (io->preflush ? REQ_PREFLUSH : 0);
	struct block_device *bdev = mio->bdev;
	struct bio *bio;

	bio = io->kind != MDRAID_K_FLUSH && io->buf_kind == MDRAID_K_BUF_CALLER ?
		mdr_clone_caller(io, bdev, opf) : NULL;
	if (!bio) {
		bio = bio_alloc(bdev, io->kind == MDRAID_K_FLUSH ? 0 : min_t(u64, BIO_MAX_VECS,
				DIV_ROUND_UP(io->len, PAGE_SIZE) + 1), opf, GFP_NOIO);
		bio->bi_iter.bi_sector = io->offset >> SECTOR_SHIFT;
	}
	if (io->kind != MDRAID_K_FLUSH && io->buf_kind != MDRAID_K_BUF_CALLER) {
		u8 *p = io->ptr;
		u64 len = io->len;

		while (len) {
			unsigned int n = min_t(u64, len, PAGE_SIZE - offset_in_page(p));

			mdr_add(&bio, is_vmalloc_addr(p) ? vmalloc_to_page(p) : virt_to_page(p), n,
				offset_in_page(p));
			p += n;
			len -= n;
		}
	}
	bio->bi_end_io = mdr_end_io;
	bio->bi_private = mio;
	submit_bio(bio);
}

/* Feeds everything queued (and rq, if any) to the machine and drains its outputs; the
 * array's mutex is held, the machine is used under qlock, which is dropped to submit member
 * bios. One pass drains what the inputs of the pass produced (handing out outputs takes no
 * input); it repeats only for requests queued meanwhile and for member I/Os ended at once.
 * Completions in between are end_io's, which kicks the worker for anything they leave. */
static void mdr_run(struct mdr_array *a, struct request *rq)
{
	struct list_head *p, *pn;
	struct mdraid_k_io io;
	struct mdraid_k_event ev;
	struct mdr_mio *mio;
	u64 id;
	int err;
	bool again = true;

	spin_lock_irq(&a->qlock);
	mdr_enqueue(a, rq);
	a->starved = false;
	/* The machine's clock is the tick's (coarse: no clock-source read, which on some
	 * machines costs more than a 4 KiB read) and moves once per jiffy; deadlines are the
	 * timer's, which forces an update. */
	if (a->m && a->ticked != jiffies) {
		a->ticked = jiffies;
		mdraid_k_handle_timeout(a->m, ktime_get_coarse_ns(), ktime_get_real_seconds());
	}
	while (a->m && again) {
		again = false;
		if (a->has_held && !mdr_take_held(a))
			break;
		list_for_each_safe(p, pn, &a->queue) {
			struct request *rq = blk_mq_rq_from_pdu(list_entry(p, struct mdr_cmd, node));
			int kind = req_op(rq) == REQ_OP_READ ? MDRAID_K_READ :
				req_op(rq) == REQ_OP_WRITE ? MDRAID_K_WRITE :
				req_op(rq) == REQ_OP_FLUSH ? MDRAID_K_FLUSH :
				req_op(rq) == REQ_OP_DISCARD ? MDRAID_K_DISCARD : -1;

			if (a->quiesce)
				break; /* a hot add waits for the machine to go idle */
			err = kind < 0 ? -EOPNOTSUPP :
				mdraid_k_submit(a->m, kind, blk_rq_pos(rq), blk_rq_sectors(rq),
						!!(rq->cmd_flags & REQ_FUA), (uintptr_t)rq, &id);
			if (err == -EBUSY) {
				a->starved = true; /* the pool is full: retried after completions */
				break;
			}
			list_del(p);
			if (err)
				mdr_end_rq(a, rq, err == -EROFS ? BLK_STS_PROTECTION :
					   err == -EOPNOTSUPP ? BLK_STS_NOTSUPP : BLK_STS_IOERR);
		}
		while (!a->has_held && mdraid_k_poll_io(a->m, &io) == 1) {
			mio = mdr_take(a, &io, NULL, NULL);
			if (mio) {
				spin_unlock_irq(&a->qlock);
				mdr_issue(a, mio);
				spin_lock_irq(&a->qlock);
			} else {
				again = true; /* ended at once (an input), or held */
			}
		}
		while (mdraid_k_poll_completion(a->m, &id, &err) == 1)
			mdr_end_rq(a, (struct request *)(uintptr_t)id, err ? BLK_STS_IOERR : 0);
		while (mdraid_k_poll_event(a->m, &ev) == 1) {
			if (ev.text[0])
				pr_info("mdraid_k: %s: %s\n", a->disk->disk_name, ev.text);
		}
		if (!a->starved && !a->quiesce && !list_empty(&a->queue))
			again = true;
	}
	if (a->m)
		mdr_arm(a);
	a->runs++;
	spin_unlock_irq(&a->qlock);
	if (wq_has_sleeper(&a->wait))
		wake_up_all(&a->wait);
}

static void mdr_work(struct work_struct *w)
{
	mdr_run_locked(container_of(w, struct mdr_array, work), false, NULL);
}

static void mdr_timer(struct work_struct *w)
{
	struct mdr_array *a = container_of(to_delayed_work(w), struct mdr_array, timer);

	WRITE_ONCE(a->ticked, jiffies - 1); /* a deadline passed: the clock moves now */
	mdr_run_locked(a, false, NULL);
}

void mdr_kick(struct mdr_array *a)
{
	queue_work(mdr_wq, &a->work);
}

/* ---- starting and stopping (array's mutex held) ---- */

static void mdr_cmd(struct mdr_array *a, u32 cmd)
{
	spin_lock_irq(&a->qlock);
	mdraid_k_cmd(a->m, cmd, 0);
	spin_unlock_irq(&a->qlock);
}

static void mdr_set_limits(struct mdr_array *a, u64 sectors)
{
	unsigned int lbs = 512, pbs = 512, max_hw = MDR_MAX_SECTORS;
	int i;

	for (i = 0; i < a->nmem; i++) {
		struct block_device *b = mdr_bdev(a->mem[i]);

		lbs = max(lbs, bdev_logical_block_size(b));
		pbs = max(pbs, bdev_physical_block_size(b));
		max_hw = min(max_hw, queue_max_hw_sectors(bdev_get_queue(b)));
	}
	/* Member bios are chained as long as needed: a request of max_hw in one piece. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	{
		struct queue_limits lim = queue_limits_start_update(a->disk->queue);

		lim.logical_block_size = lbs;
		lim.physical_block_size = pbs;
		lim.max_hw_sectors = max_hw;
		lim.max_segments = BIO_MAX_VECS;
		lim.features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
		if (queue_limits_commit_update(a->disk->queue, &lim))
			pr_warn("mdraid_k: %s: queue limits refused\n", a->disk->disk_name);
	}
#else
	blk_queue_logical_block_size(a->disk->queue, lbs);
	blk_queue_physical_block_size(a->disk->queue, pbs);
	blk_queue_max_hw_sectors(a->disk->queue, max_hw);
	blk_queue_max_segments(a->disk->queue, BIO_MAX_VECS);
	blk_queue_write_cache(a->disk->queue, true, true);
#endif
	set_capacity_and_notify(a->disk, sectors);
}

/* Takes a fresh machine (from assembly/creation) into service. */
static void mdr_adopt(struct mdr_array *a, struct mdraid_k_result *res, int ndesc)
{
	u64 sectors;
	int i, j;

	/* Devices left out of the array go back (closed). */
	for (i = ndesc - 1; i >= 0; i--) {
		bool kept = false;

		for (j = 0; j < res->nmembers; j++)
			kept |= res->ctx_out[j] == a->cand[i];
		if (!kept) {
			pr_info("mdraid_k: %s: %s left out\n", a->disk->disk_name, a->cand[i]->name);
			mdr_member_release(a, a->cand[i]);
		}
	}
	a->ncand = 0;
	for (j = 0; j < res->nmembers; j++)
		a->mem[j] = res->ctx_out[j];
	a->nmem = res->nmembers;
	spin_lock_irq(&a->qlock); /* mdr_fast_read looks at a->m under qlock alone */
	a->m = res->machine;
	mdraid_k_apply_conf(a->m, &a->conf);
	spin_unlock_irq(&a->qlock);
	mdraid_k_state(a->m, &sectors);
	mdr_set_limits(a, sectors);
	WRITE_ONCE(a->running, true);
	mdr_cmd(a, MDRAID_K_CMD_OWED_RESYNC);
	mdr_kick(a);
}

int mdr_activate(struct mdr_array *a, bool readonly)
{
	struct mdraid_k_dev_desc *d;
	struct mdraid_k_result res = {};
	struct mdraid_k_create c = {
		.version = a->conf.version, .raid_disks = a->conf.raid_disks ?: a->ncand,
		.bitmap = a->conf.bitmap, .bitmap_chunk = a->conf.bitmap_chunk, .md_minor = a->unit,
	};
	struct mdr_big b = { .n = a->ncand, .res = &res, .create = &c,
			     .flags = MDRAID_K_ASM_RUN | (readonly ? MDRAID_K_ASM_READONLY : 0) };
	int i, n = a->ncand;
	s64 err = -ENOMEM;

	if (a->m)
		return -EBUSY;
	if (!n)
		return -EINVAL;
	b.devs = d = kcalloc(n, sizeof(*d), GFP_KERNEL);
	res.ctx_out = kcalloc(n, sizeof(void *), GFP_KERNEL);
	res.msg = kzalloc(256, GFP_KERNEL);
	res.msg_len = 256;
	if (!d || !res.ctx_out || !res.msg)
		goto out;
	for (i = 0; i < n; i++)
		mdr_desc(a->cand[i], &d[i]);
	get_random_bytes(c.uuid, sizeof(c.uuid));
	get_random_bytes(&c.seed, sizeof(c.seed));
	strscpy(c.name, a->disk->disk_name, sizeof(c.name));
	err = mdr_big_call(&b);
	if (err < 0) {
		pr_warn("mdraid_k: %s: cannot start: %s\n", a->disk->disk_name, res.msg);
		goto out;
	}
	pr_info("mdraid_k: %s: %s from %zu devices\n", a->disk->disk_name,
		err ? "created" : "assembled", res.nmembers);
	mdr_adopt(a, &res, n);
	err = 0;
out:
	kfree(d);
	kfree(res.ctx_out);
	kfree(res.msg);
	return err;
}

/* Waits (array's mutex dropped meanwhile) until the machine is idle, or stopped and idle. */
static int mdr_wait(struct mdr_array *a, bool stopped)
{
	unsigned long seen;
	s64 st;
	u64 n;

	mdr_kick(a);
	for (;;) {
		spin_lock_irq(&a->qlock);
		st = mdraid_k_state(a->m, &n);
		spin_unlock_irq(&a->qlock);
		if (!(st & 1) && ((st & 2) || !stopped))
			return 0;
		seen = READ_ONCE(a->runs);
		mutex_unlock(&a->lock);
		wait_event_timeout(a->wait, READ_ONCE(a->runs) != seen, HZ);
		mutex_lock(&a->lock);
		if (!a->m)
			return -ENODEV;
	}
}

/* Stops the machine (superblocks clean) and frees it; member devices stay with the array. */
int mdr_deactivate(struct mdr_array *a)
{
	struct mdraid_k_machine *m;
	int i;

	if (!a->m)
		return 0;
	mdr_cmd(a, MDRAID_K_CMD_STOP);
	if (mdr_wait(a, true))
		return 0;
	WRITE_ONCE(a->running, false);
	set_capacity_and_notify(a->disk, 0);
	spin_lock_irq(&a->qlock); /* mdr_fast_read looks at a->m under qlock alone */
	m = a->m;
	a->m = NULL;
	a->has_held = false; /* (none: the machine was idle) */
	spin_unlock_irq(&a->qlock);
	mdraid_k_machine_free(m);
	for (i = 0; i < a->nmem; i++)
		a->cand[i] = a->mem[i];
	a->ncand = a->nmem;
	a->nmem = 0;
	return 0;
}

/* Hot add (md's new_dev on a running array): requests are held back until the machine is
 * idle, then the machine takes the device (re-add or spare; its metadata and the rebuild go
 * through the normal I/O path while the array keeps serving). */
int mdr_hot_add(struct mdr_array *a, struct mdr_member *add)
{
	struct mdraid_k_dev_desc d;
	u8 uuid[16], msg[256] = "";
	struct mdr_big b = { .devs = &d, .uuid = uuid, .msg = msg };
	s64 err;

	spin_lock_irq(&a->qlock);
	a->quiesce = true;
	spin_unlock_irq(&a->qlock);
	mdr_cmd(a, MDRAID_K_CMD_QUIESCE);
	err = mdr_wait(a, false);
	if (!err) {
		mdr_desc(add, &d);
		get_random_bytes(uuid, sizeof(uuid));
		b.m = a->m;
		err = mdr_big_call(&b);
	}
	if (err >= 0 && err != a->nmem) /* the machine appends its members */
		err = -EIO;
	spin_lock_irq(&a->qlock);
	if (err >= 0) /* with the quiesce's end: mdr_fast_read may pick it at once */
		a->mem[a->nmem++] = add;
	a->quiesce = false;
	spin_unlock_irq(&a->qlock);
	mdr_cmd(a, MDRAID_K_CMD_SYNC_CHECK); /* the quiesce's interrupted resync goes on */
	mdr_kick(a);
	if (err < 0) {
		pr_warn("mdraid_k: %s: cannot add %s: %s\n", a->disk->disk_name, add->name, msg);
		return err;
	}
	pr_info("mdraid_k: %s: added %s\n", a->disk->disk_name, add->name);
	return 0;
}

/* ---- the disk ---- */

static struct mdr_array *mdr_find(u32 unit)
{
	struct mdr_array *a;

	list_for_each_entry(a, &mdr_arrays, list)
		if (a->unit == unit)
			return a;
	return NULL;
}

static void mdr_delete_work(struct work_struct *w)
{
	struct mdr_array *a = container_of(w, struct mdr_array, del_work);

	mutex_lock(&a->lock);
	mdr_deactivate(a);
	while (a->ncand)
		mdr_member_release(a, a->cand[0]);
	mutex_unlock(&a->lock);
	cancel_delayed_work_sync(&a->timer);
	cancel_work_sync(&a->work);
	while (a->mio_free) { /* no member I/O is in flight: deactivated */
		struct mdr_mio *mio = a->mio_free;

		a->mio_free = mio->next;
		kfree(mio);
	}
	flush_workqueue(mdr_wq); /* member kobjects go first */
	mdr_sysfs_del(a);
	pr_info("mdraid_k: %s: gone\n", a->disk->disk_name);
	del_gendisk(a->disk);
	put_disk(a->disk);
	blk_mq_free_tag_set(&a->tag_set);
	kobject_put(&a->md_kobj); /* frees a */
}

/* The registry removed the array: its disk goes (registry mutex held). */
void mdr_gone(struct mdr_array *a)
{
	if (a->gone)
		return;
	a->gone = true;
	list_del(&a->list);
	queue_work(mdr_del_wq, &a->del_work);
}

static int mdr_open(MDR_OPEN_ARGS)
{
	struct mdr_array *a = MDR_OPEN_DISK->private_data;
	struct mdraid_k_handle *h;
	s64 err;

	mutex_lock(&mdr_reg_lock);
	err = mdraid_k_reg_open(mdr_reg, a->unit, MDRAID_K_OPEN_GET, &h);
	if (!err && a->nopens >= MDR_MAX_OPENS) {
		mdraid_k_reg_put(mdr_reg, h);
		err = -EMFILE;
	} else if (!err) {
		a->opens[a->nopens++] = h;
	}
	mutex_unlock(&mdr_reg_lock);
	return err;
}

static void mdr_release(MDR_RELEASE_ARGS)
{
	struct mdr_array *a = disk->private_data;

	mutex_lock(&mdr_reg_lock);
	if (a->nopens && mdraid_k_reg_put(mdr_reg, a->opens[--a->nopens]) == 1)
		mdr_gone(a);
	mutex_unlock(&mdr_reg_lock);
}

static const struct block_device_operations mdr_fops = {
	.owner = THIS_MODULE,
	.open = mdr_open,
	.release = mdr_release,
};

/* Writeback throttling belongs to the members' queues, which see every member write; on
 * the array's queue (md, bio-based, has none) it would only throttle and count each write a
 * second time. add_disk turned it on; the exported call bfq uses turns it off (its
 * declaration is in block/, not include/). */
#ifdef CONFIG_BLK_WBT
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
void wbt_disable_default(struct gendisk *disk);
#define mdr_no_wbt(disk) wbt_disable_default(disk)
#else
void wbt_disable_default(struct request_queue *q);
#define mdr_no_wbt(disk) wbt_disable_default((disk)->queue)
#endif
#else
#define mdr_no_wbt(disk) do {} while (0)
#endif

/* The array's queue without what md's (bio-based) has not: writeback throttling and its
 * latency statistics, and the block layer's per-request accounting (a clock read at each
 * start and end; mdr_acct_start counts instead, as md does). */
static void mdr_quiet_queue(struct gendisk *disk)
{
	mdr_no_wbt(disk);
	/* With throttling off nothing reads the statistics wbt asked for (its callback
	 * stays registered); without the flag no request takes their time stamps. */
	blk_queue_flag_clear(QUEUE_FLAG_STATS, disk->queue);
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	{
		struct queue_limits lim = queue_limits_start_update(disk->queue);

		lim.features &= ~BLK_FEAT_IO_STAT;
		if (queue_limits_commit_update(disk->queue, &lim))
			pr_warn("mdraid_k: %s: block-layer accounting stays on\n", disk->disk_name);
	}
#else
	blk_queue_flag_clear(QUEUE_FLAG_IO_STAT, disk->queue);
#endif
}

/* md_alloc: the gendisk of a unit the registry just created (registry mutex held). */
static int mdr_alloc(u32 unit)
{
	struct mdraid_k_reg_info info;
	struct mdr_array *a;
	int err;

	if (mdr_find(unit))
		return 0;
	if (mdraid_k_reg_info(mdr_reg, unit, &info))
		return -ENOENT;
	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	a->unit = unit;
	a->conf.level = 1;
	a->conf.version = 12;
	mutex_init(&a->lock);
	spin_lock_init(&a->qlock);
	INIT_LIST_HEAD(&a->queue);
	INIT_WORK(&a->work, mdr_work);
	INIT_WORK(&a->del_work, mdr_delete_work);
	INIT_DELAYED_WORK(&a->timer, mdr_timer);
	init_waitqueue_head(&a->wait);
	a->tag_set.ops = &mdr_mq_ops;
	a->tag_set.nr_hw_queues = 1;
	a->tag_set.queue_depth = MDR_DEPTH;
	a->tag_set.numa_node = NUMA_NO_NODE;
	a->tag_set.cmd_size = sizeof(struct mdr_cmd);
	/* no elevator by default (md has none): mq-deadline would dispatch from kblockd */
	a->tag_set.flags = BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_BLOCKING | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	a->tag_set.timeout = 120 * HZ;
	err = blk_mq_alloc_tag_set(&a->tag_set);
	if (err)
		goto out_free;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	a->disk = blk_mq_alloc_disk(&a->tag_set, NULL, a);
#else
	a->disk = blk_mq_alloc_disk(&a->tag_set, a);
#endif
	if (IS_ERR(a->disk)) {
		err = PTR_ERR(a->disk);
		goto out_tags;
	}
	a->disk->major = mdr_major;
	a->disk->first_minor = unit;
	a->disk->minors = 1;
	a->disk->fops = &mdr_fops;
	a->disk->private_data = a;
	a->disk->flags |= GENHD_FL_NO_PART;
	if (info.named) /* md_<name> in the registry is mdr_<name> here */
		snprintf(a->disk->disk_name, DISK_NAME_LEN, "mdr%s", info.name + 2);
	else
		snprintf(a->disk->disk_name, DISK_NAME_LEN, "mdr%u", unit);
	set_capacity(a->disk, 0);
	err = add_disk(a->disk);
	if (err)
		goto out_disk;
	mdr_quiet_queue(a->disk);
	err = mdr_sysfs_add(a);
	if (err)
		goto out_del;
	list_add(&a->list, &mdr_arrays);
	pr_info("mdraid_k: %s created (unit %u)\n", a->disk->disk_name, unit);
	return 0;
out_del:
	del_gendisk(a->disk);
out_disk:
	put_disk(a->disk);
out_tags:
	blk_mq_free_tag_set(&a->tag_set);
out_free:
	kfree(a);
	return err;
}

/* md_probe: opening a unit with no disk. */
static void mdr_probe(dev_t dev)
{
	struct mdraid_k_handle *h;
	u32 unit = MINOR(dev);

	if (MAJOR(dev) != mdr_major)
		return;
	pr_info("mdraid_k: probe of %u:%u\n", MAJOR(dev), MINOR(dev));
	mutex_lock(&mdr_reg_lock);
	if (!mdraid_k_reg_open(mdr_reg, unit, MDRAID_K_OPEN_PROBE, &h)) {
		int err = mdr_alloc(unit);

		if (mdraid_k_reg_put(mdr_reg, h) == 1 || err) {
			struct mdr_array *a = mdr_find(unit);

			if (a)
				mdr_gone(a);
		}
	}
	mutex_unlock(&mdr_reg_lock);
}

/* new_array=mdr_<name> | mdr<N>: md's new_array parameter, for our disk names. */
static int mdr_new_array(const char *val, const struct kernel_param *kp)
{
	char name[DISK_NAME_LEN];
	size_t len = strcspn(val, "\n");
	s64 unit;
	int err;

	if (len < 4 || len >= sizeof(name) || strncmp(val, "mdr", 3))
		return -EINVAL;
	/* mdr_x -> md_x, mdrN -> mdN */
	snprintf(name, sizeof(name), "md%.*s", (int)(len - 3), val + 3);
	mutex_lock(&mdr_reg_lock);
	unit = mdraid_k_reg_new_array(mdr_reg, name, strlen(name));
	err = unit < 0 ? unit : mdr_alloc(unit);
	mutex_unlock(&mdr_reg_lock);
	return err;
}

/* Set by the QEMU harness's gdb once its breakpoints are in (kmod-shim/qemu/run.sh --gdb). */
static int mdr_gdb_go;
module_param_named(gdb_go, mdr_gdb_go, int, 0644);
MODULE_PARM_DESC(gdb_go, "debugging handshake for the QEMU harness (no effect)");

static const struct kernel_param_ops mdr_new_array_ops = { .set = mdr_new_array };
module_param_cb(new_array, &mdr_new_array_ops, NULL, 0200);
MODULE_PARM_DESC(new_array, "create a named array: mdr_<name> or mdr<N>");

static int __init mdr_init(void)
{
	int err = -ENOMEM;

	mdr_sysfs_init();
	mdr_reg = mdraid_k_reg_new(0);
	mdr_wq = alloc_workqueue("mdraid_k", WQ_MEM_RECLAIM | WQ_HIGHPRI, 0);
	mdr_del_wq = alloc_workqueue("mdraid_k_del", 0, 0);
	if (mdr_reg && mdr_wq && mdr_del_wq && !bioset_init(&mdr_bs, BIO_POOL_SIZE, 0, 0)) {
		err = __register_blkdev(0, "mdr", mdr_probe);
		if (err >= 0) {
			mdr_major = err;
			pr_info("mdraid_k: block major %d\n", mdr_major);
			return 0;
		}
		bioset_exit(&mdr_bs);
	}
	if (mdr_del_wq)
		destroy_workqueue(mdr_del_wq);
	if (mdr_wq)
		destroy_workqueue(mdr_wq);
	mdraid_k_reg_free(mdr_reg);
	return err;
}

static void __exit mdr_exit(void)
{
	struct mdr_array *a, *n;

	unregister_blkdev(mdr_major, "mdr");
	mutex_lock(&mdr_reg_lock);
	list_for_each_entry_safe(a, n, &mdr_arrays, list)
		mdr_gone(a);
	mutex_unlock(&mdr_reg_lock);
	destroy_workqueue(mdr_del_wq); /* drains the deletions */
	destroy_workqueue(mdr_wq);
	mdraid_k_reg_free(mdr_reg);
	flush_work(&mdr_vfree_work);
	bioset_exit(&mdr_bs);
}

module_init(mdr_init);
module_exit(mdr_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("mdraid arrays (RAID1, md-compatible metadata) as block devices");
