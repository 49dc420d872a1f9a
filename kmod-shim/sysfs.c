// SPDX-License-Identifier: GPL-2.0
/*
 * mdraid_k's md/ directory under the disk, with md/bitmap/ and md/dev-<name>/: md's attribute
 * names and meanings (Documentation/admin-guide/md.rst). Which files exist, what they show and
 * how a write is parsed are the core side's (kmod-shim/rust/src/attrs.rs: mdraid_k_attr_info,
 * mdraid_k_show, mdraid_k_store); this file creates the files and carries out the kernel work a
 * store asks for (opening a device, starting and stopping the array, releasing a device).
 */
#include "mdraid_kmod.h"

#define MDR_NATTR 32

struct mdr_attr {
	struct attribute attr;
	u32 id;
};

static struct mdr_attr mdr_attrs[MDR_NATTR];
static struct attribute *mdr_dir_attrs[3][MDR_NATTR + 1];
static struct attribute_group mdr_group[3];
static const struct attribute_group *mdr_groups[3][2];

/* Fills the attribute tables from the core's list (module init, before any array). */
void mdr_sysfs_init(void)
{
	u32 id, dir, mode, n[3] = {};
	const u8 *name;

	for (id = 0; id < MDR_NATTR && !mdraid_k_attr_info(id, &dir, &name, &mode); id++) {
		if (dir > MDRAID_K_DIR_DEV)
			continue;
		mdr_attrs[id].attr.name = name;
		mdr_attrs[id].attr.mode = mode;
		mdr_attrs[id].id = id;
		mdr_dir_attrs[dir][n[dir]++] = &mdr_attrs[id].attr;
	}
	for (dir = 0; dir < 3; dir++) {
		mdr_group[dir].attrs = mdr_dir_attrs[dir];
		mdr_groups[dir][0] = &mdr_group[dir];
	}
}

static int mdr_reg_do(struct mdr_array *a, u32 op)
{
	struct mdraid_k_handle *h;
	s64 err;

	mutex_lock(&mdr_reg_lock);
	err = mdraid_k_reg_open(mdr_reg, a->unit, MDRAID_K_OPEN_GET, &h);
	if (!err) {
		err = mdraid_k_reg_op(mdr_reg, h, op);
		if (mdraid_k_reg_put(mdr_reg, h) == 1)
			mdr_gone(a);
	}
	mutex_unlock(&mdr_reg_lock);
	return err;
}

static void mdr_member_free_work(struct work_struct *w)
{
	struct mdr_member *mem = container_of(w, struct mdr_member, free_work);

	kobject_del(&mem->kobj);
	kobject_put(&mem->kobj);
}

void mdr_member_release(struct mdr_array *a, struct mdr_member *mem)
{
	int i;

	for (i = 0; i < a->ncand; i++)
		if (a->cand[i] == mem) {
			memmove(&a->cand[i], &a->cand[i + 1], (a->ncand - i - 1) * sizeof(mem));
			a->ncand--;
		}
	mdr_member_close(mem);
	mdr_reg_do(a, MDRAID_K_REG_REMOVE_MEMBER);
	/* maybe from its own state attribute: the kobject goes from a worker */
	queue_work(mdr_wq, &mem->free_work);
}

/* Full stop (md's do_md_stop mode 0): refused while others have a running array open. Once
 * the registry lets the array go, its disk goes with the last reference. */
static int mdr_clear(struct mdr_array *a)
{
	int err = mdr_reg_do(a, MDRAID_K_REG_STOP);

	if (!err) {
		mdr_deactivate(a);
		while (a->ncand)
			mdr_member_release(a, a->cand[0]);
		pr_info("mdraid_k: %s: stopped\n", a->disk->disk_name);
	}
	return err;
}

static int mdr_member_sysfs_add(struct mdr_array *a, struct mdr_member *mem);

/* md's new_dev: a candidate for the next activation, or a hot add to the running array. */
static int mdr_new_dev(struct mdr_array *a, dev_t dev)
{
	struct mdr_member *mem;
	int err, i;

	if (a->nmem + a->ncand >= MDR_MAX_MEMBERS)
		return -ENOSPC;
	for (i = 0; i < a->nmem + a->ncand; i++)
		if ((i < a->nmem ? a->mem[i] : a->cand[i - a->nmem])->dev == dev)
			return -EEXIST;
	mem = mdr_member_open(a, dev);
	if (IS_ERR(mem))
		return PTR_ERR(mem);
	err = mdr_member_sysfs_add(a, mem); /* closes and frees mem on failure */
	if (err)
		return err;
	mdr_reg_do(a, MDRAID_K_REG_CONFIGURE);
	mdr_reg_do(a, MDRAID_K_REG_ADD_MEMBER);
	mdr_reg_do(a, MDRAID_K_REG_NOTE_IOCTL);
	if (!a->m) {
		a->cand[a->ncand++] = mem;
		return 0;
	}
	err = mdr_hot_add(a, mem);
	if (err)
		mdr_member_release(a, mem);
	return err;
}

static void mdr_md_release(struct kobject *k)
{
	kfree(container_of(k, struct mdr_array, md_kobj));
}

static void mdr_bm_release(struct kobject *k)
{
	/* embedded in the array, which md/'s release frees */
}

static void mdr_dev_release(struct kobject *k)
{
	kfree(container_of(k, struct mdr_member, kobj));
}

/* The array (and the member, for dev-<name>/) behind a kobject of ours. */
static struct mdr_array *mdr_of(struct kobject *k, struct mdr_member **mem)
{
	*mem = NULL;
	if (k->ktype->release == mdr_dev_release) {
		*mem = container_of(k, struct mdr_member, kobj);
		return (*mem)->a;
	}
	if (k->ktype->release == mdr_bm_release)
		return container_of(k, struct mdr_array, bm_kobj);
	return container_of(k, struct mdr_array, md_kobj);
}

static int mdr_dev_index(struct mdr_array *a, struct mdr_member *mem)
{
	int i;

	for (i = 0; mem && i < a->nmem; i++)
		if (a->mem[i] == mem)
			return i;
	return -1;
}

static ssize_t mdr_show(struct kobject *k, struct attribute *at, char *buf)
{
	struct mdr_member *mem;
	struct mdr_array *a = mdr_of(k, &mem);
	u32 id = container_of(at, struct mdr_attr, attr)->id;
	struct mdraid_k_reg_info info;
	ssize_t r;

	mutex_lock(&a->lock);
	if (id == MDRAID_K_ATTR_ARRAY_STATE) {
		mutex_lock(&mdr_reg_lock);
		a->conf.present = a->ncand ||
			(!mdraid_k_reg_info(mdr_reg, a->unit, &info) && info.state != 0);
		mutex_unlock(&mdr_reg_lock);
	}
	spin_lock_irq(&a->qlock);
	r = mdraid_k_show(a->m, &a->conf, id, mdr_dev_index(a, mem), buf, PAGE_SIZE);
	spin_unlock_irq(&a->qlock);
	mutex_unlock(&a->lock);
	return r;
}

static ssize_t mdr_store(struct kobject *k, struct attribute *at, const char *buf, size_t len)
{
	struct mdr_member *mem;
	struct mdr_array *a = mdr_of(k, &mem);
	u32 id = container_of(at, struct mdr_attr, attr)->id;
	ssize_t r;
	int idx;
	bool running;

	kobject_get(&a->md_kobj);
	mutex_lock(&a->lock);
	idx = mdr_dev_index(a, mem);
	spin_lock_irq(&a->qlock);
	r = mdraid_k_store(a->m, &a->conf, id, idx, buf, len);
	if (r == MDRAID_K_DO_REMOVE_MEMBER) { /* the machine let it go: its indexes moved now */
		memmove(&a->mem[idx], &a->mem[idx + 1], (a->nmem - idx - 1) * sizeof(mem));
		a->nmem--;
	}
	spin_unlock_irq(&a->qlock);
	switch (r) {
	case MDRAID_K_DO_NEW_DEV:
		r = mdr_new_dev(a, (dev_t)a->conf.arg);
		break;
	case MDRAID_K_DO_ACTIVATE:
		r = mdr_activate(a, a->conf.arg);
		if (!r) {
			a->conf.readonly = a->conf.arg;
			mdr_reg_do(a, MDRAID_K_REG_RUN);
		}
		break;
	case MDRAID_K_DO_INACTIVE:
		r = mdr_deactivate(a);
		if (!r)
			mdr_reg_do(a, MDRAID_K_REG_INACTIVE);
		break;
	case MDRAID_K_DO_CLEAR:
		r = mdr_clear(a);
		break;
	case MDRAID_K_DO_REMOVE_MEMBER: /* out of a->mem above */
	case MDRAID_K_DO_REMOVE_CANDIDATE:
		if (mem)
			mdr_member_release(a, mem);
		r = 0;
		break;
	}
	running = a->m;
	mutex_unlock(&a->lock);
	if (running)
		mdr_kick(a);
	kobject_put(&a->md_kobj);
	return r < 0 ? r : len;
}

static const struct sysfs_ops mdr_sysfs_ops = { .show = mdr_show, .store = mdr_store };

static const struct kobj_type mdr_md_ktype = {
	.sysfs_ops = &mdr_sysfs_ops,
	.release = mdr_md_release,
	.default_groups = mdr_groups[MDRAID_K_DIR_MD],
};

static const struct kobj_type mdr_bm_ktype = {
	.sysfs_ops = &mdr_sysfs_ops,
	.release = mdr_bm_release,
	.default_groups = mdr_groups[MDRAID_K_DIR_BITMAP],
};

static const struct kobj_type mdr_dev_ktype = {
	.sysfs_ops = &mdr_sysfs_ops,
	.release = mdr_dev_release,
	.default_groups = mdr_groups[MDRAID_K_DIR_DEV],
};

static int mdr_member_sysfs_add(struct mdr_array *a, struct mdr_member *mem)
{
	int err;

	INIT_WORK(&mem->free_work, mdr_member_free_work);
	err = kobject_init_and_add(&mem->kobj, &mdr_dev_ktype, &a->md_kobj, "dev-%s", mem->name);
	if (err) {
		mdr_member_close(mem);
		kobject_put(&mem->kobj); /* frees mem */
	}
	return err;
}

int mdr_sysfs_add(struct mdr_array *a)
{
	int err = kobject_init_and_add(&a->md_kobj, &mdr_md_ktype, &disk_to_dev(a->disk)->kobj,
				       "md");

	if (err)
		return err;
	a->bm_added = !kobject_init_and_add(&a->bm_kobj, &mdr_bm_ktype, &a->md_kobj, "bitmap");
	if (!a->bm_added) {
		kobject_put(&a->bm_kobj);
		pr_warn("mdraid_k: %s: no md/bitmap/\n", a->disk->disk_name);
	}
	return 0;
}

void mdr_sysfs_del(struct mdr_array *a)
{
	if (a->bm_added) {
		kobject_del(&a->bm_kobj);
		kobject_put(&a->bm_kobj);
	}
	kobject_del(&a->md_kobj);
}
