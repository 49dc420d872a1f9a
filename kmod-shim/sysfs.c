// SPDX-License-Identifier: GPL-2.0
/*
 * mdraid_k's md/ directory under the disk: md's attribute names and meanings for what the
 * core has (Documentation/admin-guide/md.rst). Every store parses its input strictly and
 * answers bad input with an errno; the array's state comes from the machine (mdraid_k_status,
 * mdraid_k_member), commands go to it (mdraid_k_cmd).
 */
#include "mdraid_kmod.h"

struct mdr_attr {
	struct attribute attr;
	ssize_t (*show)(struct mdr_array *a, char *buf);
	ssize_t (*store)(struct mdr_array *a, const char *buf, size_t len);
};

struct mdr_dev_attr {
	struct attribute attr;
	ssize_t (*show)(struct mdr_array *a, struct mdr_member *mem, int idx, char *buf);
	ssize_t (*store)(struct mdr_array *a, struct mdr_member *mem, int idx, const char *buf,
			 size_t len);
};

static const char *const mdr_actions[] = { "idle", "resync", "recover", "check", "repair" };

const char *mdr_action_name(u32 action)
{
	return action < ARRAY_SIZE(mdr_actions) ? mdr_actions[action] : "?";
}

/* The word in buf (one trailing newline allowed) equals w. */
static bool mdr_word(const char *buf, size_t len, const char *w)
{
	if (len && buf[len - 1] == '\n')
		len--;
	return len == strlen(w) && !strncmp(buf, w, len);
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
	if (mem->kobj_added) /* maybe from its own state attribute: removed from a worker */
		queue_work(mdr_wq, &mem->free_work);
	else
		kfree(mem);
}

static void mdr_member_free_work(struct work_struct *w)
{
	struct mdr_member *mem = container_of(w, struct mdr_member, free_work);

	kobject_del(&mem->kobj);
	kobject_put(&mem->kobj);
}

/* ---- md/ ---- */

static ssize_t level_show(struct mdr_array *a, char *buf)
{
	return sysfs_emit(buf, "%s\n", a->level == 1 ? "raid1" : "");
}

static ssize_t level_store(struct mdr_array *a, const char *buf, size_t len)
{
	if (a->m)
		return -EBUSY;
	if (!mdr_word(buf, len, "raid1") && !mdr_word(buf, len, "1"))
		return -EINVAL;
	a->level = 1;
	return len;
}

static ssize_t raid_disks_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (a->m && !mdraid_k_status(a->m, &st))
		return sysfs_emit(buf, "%u\n", st.raid_disks);
	return sysfs_emit(buf, "%u\n", a->raid_disks);
}

static ssize_t raid_disks_store(struct mdr_array *a, const char *buf, size_t len)
{
	u32 n;

	if (kstrtou32(buf, 10, &n) || n < 1 || n > MDR_MAX_MEMBERS)
		return -EINVAL;
	if (a->m)
		return -EBUSY; /* reshape is not supported */
	a->raid_disks = n;
	return len;
}

static ssize_t metadata_version_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;
	u32 v = a->version;

	if (a->m && !mdraid_k_status(a->m, &st))
		v = st.version;
	return v ? sysfs_emit(buf, "1.%u\n", v - 10) : sysfs_emit(buf, "0.90\n");
}

static ssize_t metadata_version_store(struct mdr_array *a, const char *buf, size_t len)
{
	static const char *const names[] = { "0.90", "1.0", "1.1", "1.2" };
	static const u32 vals[] = { 0, 10, 11, 12 };
	int i;

	if (a->m)
		return -EBUSY;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (mdr_word(buf, len, names[i])) {
			a->version = vals[i];
			return len;
		}
	return -EINVAL;
}

static ssize_t new_dev_store(struct mdr_array *a, const char *buf, size_t len)
{
	unsigned int major, minor;
	struct mdr_member *mem;
	int err, i, n = 0;

	if (sscanf(buf, "%u:%u%n", &major, &minor, &n) != 2 ||
	    (buf[n] && !(buf[n] == '\n' && !buf[n + 1])))
		return -EINVAL;
	if (MKDEV(major, minor) == 0 || MAJOR(MKDEV(major, minor)) != major ||
	    MINOR(MKDEV(major, minor)) != minor)
		return -EINVAL;
	if (a->nmem + a->ncand >= MDR_MAX_MEMBERS)
		return -ENOSPC;
	for (i = 0; i < a->ncand; i++)
		if (a->cand[i]->dev == MKDEV(major, minor))
			return -EEXIST;
	for (i = 0; i < a->nmem; i++)
		if (a->mem[i]->dev == MKDEV(major, minor))
			return -EEXIST;
	mem = mdr_member_open(a, MKDEV(major, minor));
	if (IS_ERR(mem))
		return PTR_ERR(mem);
	err = mdr_member_sysfs_add(a, mem); /* closes and frees mem on failure */
	if (err)
		return err;
	mdr_reg_do(a, MDRAID_K_REG_CONFIGURE);
	mdr_reg_do(a, MDRAID_K_REG_ADD_MEMBER);
	mdr_reg_do(a, MDRAID_K_REG_NOTE_IOCTL);
	if (a->m) {
		err = mdr_hot_add(a, mem);
		if (err) {
			mdr_member_release(a, mem);
			return err;
		}
		return len;
	}
	a->cand[a->ncand++] = mem;
	return len;
}

static ssize_t array_state_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;
	struct mdraid_k_reg_info info;
	bool configured;

	if (a->m && !mdraid_k_status(a->m, &st))
		return sysfs_emit(buf, "%s\n", a->readonly ? "readonly" :
				  st.dirty ? "active" : "clean");
	mutex_lock(&mdr_reg_lock);
	configured = !mdraid_k_reg_info(mdr_reg, a->unit, &info) && info.state != 0;
	mutex_unlock(&mdr_reg_lock);
	return sysfs_emit(buf, "%s\n", configured || a->ncand ? "inactive" : "clear");
}

/* Full stop (md's do_md_stop mode 0): refused while others have a running array open. */
static int mdr_clear(struct mdr_array *a)
{
	struct mdraid_k_handle *h;
	s64 err;

	mutex_lock(&mdr_reg_lock);
	err = mdraid_k_reg_open(mdr_reg, a->unit, MDRAID_K_OPEN_GET, &h);
	if (err) {
		mutex_unlock(&mdr_reg_lock);
		return err;
	}
	err = mdraid_k_reg_op(mdr_reg, h, MDRAID_K_REG_STOP);
	mutex_unlock(&mdr_reg_lock);
	if (!err) {
		mdr_deactivate(a);
		while (a->ncand)
			mdr_member_release(a, a->cand[0]);
		pr_info("mdraid_k: %s: stopped\n", a->disk->disk_name);
	}
	mutex_lock(&mdr_reg_lock);
	if (mdraid_k_reg_put(mdr_reg, h) == 1)
		mdr_gone(a);
	mutex_unlock(&mdr_reg_lock);
	return err;
}

static ssize_t array_state_store(struct mdr_array *a, const char *buf, size_t len)
{
	int err;

	if (mdr_word(buf, len, "clear")) {
		err = mdr_clear(a);
	} else if (mdr_word(buf, len, "inactive")) {
		err = mdr_deactivate(a);
		if (!err)
			mdr_reg_do(a, MDRAID_K_REG_INACTIVE);
	} else if (mdr_word(buf, len, "active") || mdr_word(buf, len, "clean") ||
		   mdr_word(buf, len, "readonly")) {
		bool ro = mdr_word(buf, len, "readonly");

		if (a->m)
			return ro == a->readonly ? len : -EBUSY;
		err = mdr_activate(a, ro);
		if (!err) {
			a->readonly = ro;
			mdr_reg_do(a, MDRAID_K_REG_RUN);
		}
	} else {
		err = -EINVAL;
	}
	return err ? err : len;
}

static ssize_t sync_action_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (!a->m || mdraid_k_status(a->m, &st))
		return sysfs_emit(buf, "idle\n");
	return sysfs_emit(buf, "%s\n", mdr_action_name(st.sync_action));
}

static ssize_t sync_action_store(struct mdr_array *a, const char *buf, size_t len)
{
	int i, err = -EINVAL;

	if (!a->m)
		return -EINVAL;
	if (mdr_word(buf, len, "idle") || mdr_word(buf, len, "frozen")) {
		err = mdraid_k_cmd(a->m, MDRAID_K_CMD_ABORT_SYNC, 0);
		if (err == -EBUSY)
			err = 0; /* nothing running */
	}
	for (i = 1; i < ARRAY_SIZE(mdr_actions); i++)
		if (mdr_word(buf, len, mdr_actions[i]))
			err = mdraid_k_cmd(a->m, MDRAID_K_CMD_SYNC, i);
	mdr_kick(a);
	return err ? err : len;
}

static ssize_t sync_completed_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (!a->m || mdraid_k_status(a->m, &st) || !st.sync_action)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%llu / %llu\n", st.sync_done, st.sync_total);
}

static ssize_t sync_speed_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (!a->m || mdraid_k_status(a->m, &st) || !st.sync_action)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%llu\n", st.sync_speed);
}

static ssize_t mdr_speed_show(u64 v, u64 def, char *buf)
{
	return v ? sysfs_emit(buf, "%llu (local)\n", v) : sysfs_emit(buf, "%llu (system)\n", def);
}

static ssize_t mdr_speed_store(struct mdr_array *a, u64 *field, const char *buf, size_t len)
{
	u64 v, old = *field;
	int err;

	if (mdr_word(buf, len, "system"))
		v = 0;
	else if (kstrtou64(buf, 10, &v) || v > 0xffffffffULL)
		return -EINVAL;
	*field = v;
	if (a->m) {
		u64 mn = a->speed_min ? a->speed_min : 1000;
		u64 mx = a->speed_max ? a->speed_max : 200000;

		err = mdraid_k_cmd(a->m, MDRAID_K_CMD_SPEED, mn << 32 | mx);
		if (err) {
			*field = old;
			return err;
		}
	}
	return len;
}

static ssize_t sync_speed_min_show(struct mdr_array *a, char *buf)
{
	return mdr_speed_show(a->speed_min, 1000, buf);
}

static ssize_t sync_speed_min_store(struct mdr_array *a, const char *buf, size_t len)
{
	return mdr_speed_store(a, &a->speed_min, buf, len);
}

static ssize_t sync_speed_max_show(struct mdr_array *a, char *buf)
{
	return mdr_speed_show(a->speed_max, 200000, buf);
}

static ssize_t sync_speed_max_store(struct mdr_array *a, const char *buf, size_t len)
{
	return mdr_speed_store(a, &a->speed_max, buf, len);
}

static ssize_t mismatch_cnt_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (!a->m || mdraid_k_status(a->m, &st))
		return sysfs_emit(buf, "0\n");
	return sysfs_emit(buf, "%llu\n", st.mismatch_cnt);
}

static ssize_t degraded_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (!a->m || mdraid_k_status(a->m, &st))
		return sysfs_emit(buf, "0\n");
	return sysfs_emit(buf, "%u\n", st.degraded);
}

static ssize_t safe_mode_delay_show(struct mdr_array *a, char *buf)
{
	return sysfs_emit(buf, "0.200\n"); /* the core's safe-mode delay (md's default) */
}

static ssize_t safe_mode_delay_store(struct mdr_array *a, const char *buf, size_t len)
{
	/* Only the core's fixed delay is accepted. */
	return mdr_word(buf, len, "0.200") || mdr_word(buf, len, "0.2") ? len : -EINVAL;
}

static ssize_t component_size_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st;

	if (!a->m || mdraid_k_status(a->m, &st))
		return sysfs_emit(buf, "0\n");
	return sysfs_emit(buf, "%llu\n", st.sectors / 2);
}

/* Driver-side state, for debugging hangs: requests not yet taken, requests in the machine. */
static ssize_t mdr_debug_show(struct mdr_array *a, char *buf)
{
	struct mdraid_k_status st = {};
	struct list_head *p;
	unsigned long id;
	void *rq;
	int held = 0, inflight = 0;

	list_for_each(p, &a->held)
		held++;
	xa_for_each(&a->inflight, id, rq)
		inflight++;
	if (a->m)
		mdraid_k_status(a->m, &st);
	return sysfs_emit(buf, "held=%d inflight=%d busy=%u dirty=%u timer=%d runs=%lu\n", held,
			  inflight, st.busy, st.dirty, delayed_work_pending(&a->timer), a->runs);
}

#define MDR_RW(n) static struct mdr_attr mdr_attr_##n = __ATTR(n, 0644, n##_show, n##_store)
#define MDR_RO(n) static struct mdr_attr mdr_attr_##n = __ATTR(n, 0444, n##_show, NULL)
MDR_RW(level);
MDR_RW(raid_disks);
MDR_RW(metadata_version);
static struct mdr_attr mdr_attr_new_dev = __ATTR(new_dev, 0200, NULL, new_dev_store);
MDR_RW(array_state);
MDR_RW(sync_action);
MDR_RO(sync_completed);
MDR_RO(sync_speed);
MDR_RW(sync_speed_min);
MDR_RW(sync_speed_max);
MDR_RO(mismatch_cnt);
MDR_RO(degraded);
MDR_RW(safe_mode_delay);
MDR_RO(component_size);
static struct mdr_attr mdr_attr_mdr_debug = __ATTR(mdr_debug, 0444, mdr_debug_show, NULL);

static struct attribute *mdr_md_attrs[] = {
	&mdr_attr_level.attr, &mdr_attr_raid_disks.attr, &mdr_attr_metadata_version.attr,
	&mdr_attr_new_dev.attr, &mdr_attr_array_state.attr, &mdr_attr_sync_action.attr,
	&mdr_attr_sync_completed.attr, &mdr_attr_sync_speed.attr, &mdr_attr_sync_speed_min.attr,
	&mdr_attr_sync_speed_max.attr, &mdr_attr_mismatch_cnt.attr, &mdr_attr_degraded.attr,
	&mdr_attr_safe_mode_delay.attr, &mdr_attr_component_size.attr, &mdr_attr_mdr_debug.attr, NULL,
};
ATTRIBUTE_GROUPS(mdr_md);

static ssize_t mdr_md_show(struct kobject *k, struct attribute *at, char *buf)
{
	struct mdr_array *a = container_of(k, struct mdr_array, md_kobj);
	struct mdr_attr *ma = container_of(at, struct mdr_attr, attr);
	ssize_t r;

	if (!ma->show)
		return -EIO;
	mutex_lock(&a->lock);
	r = ma->show(a, buf);
	mutex_unlock(&a->lock);
	return r;
}

static ssize_t mdr_md_store(struct kobject *k, struct attribute *at, const char *buf, size_t len)
{
	struct mdr_array *a = container_of(k, struct mdr_array, md_kobj);
	struct mdr_attr *ma = container_of(at, struct mdr_attr, attr);
	ssize_t r;

	if (!ma->store)
		return -EIO;
	mutex_lock(&a->lock);
	r = ma->store(a, buf, len);
	mutex_unlock(&a->lock);
	mdr_kick(a);
	return r;
}

static const struct sysfs_ops mdr_md_ops = { .show = mdr_md_show, .store = mdr_md_store };

static void mdr_md_release(struct kobject *k)
{
	kfree(container_of(k, struct mdr_array, md_kobj));
}

static const struct kobj_type mdr_md_ktype = {
	.sysfs_ops = &mdr_md_ops,
	.release = mdr_md_release,
	.default_groups = mdr_md_groups,
};

/* ---- md/bitmap/ ---- */

static struct mdr_array *mdr_bm_array(struct kobject *k)
{
	return container_of(k->parent, struct mdr_array, md_kobj);
}

static ssize_t location_show(struct kobject *k, struct kobj_attribute *at, char *buf)
{
	struct mdr_array *a = mdr_bm_array(k);
	struct mdraid_k_status st;
	ssize_t r;

	mutex_lock(&a->lock);
	if (a->m && !mdraid_k_status(a->m, &st))
		r = st.bitmap_chunk ? sysfs_emit(buf, "%+lld\n", st.bitmap_offset) :
			sysfs_emit(buf, "none\n");
	else
		r = sysfs_emit(buf, "%s\n", a->bitmap ? "+8" : "none");
	mutex_unlock(&a->lock);
	return r;
}

static ssize_t location_store(struct kobject *k, struct kobj_attribute *at, const char *buf,
			      size_t len)
{
	struct mdr_array *a = mdr_bm_array(k);
	ssize_t r = len;

	mutex_lock(&a->lock);
	if (a->m)
		r = -EBUSY;
	else if (mdr_word(buf, len, "none"))
		a->bitmap = 0;
	else if (mdr_word(buf, len, "internal") || mdr_word(buf, len, "+8"))
		a->bitmap = 1; /* placed by the core as mdadm places it */
	else
		r = -EINVAL;
	mutex_unlock(&a->lock);
	return r;
}

static ssize_t chunksize_show(struct kobject *k, struct kobj_attribute *at, char *buf)
{
	struct mdr_array *a = mdr_bm_array(k);
	struct mdraid_k_status st;
	u64 v = a->bitmap_chunk;

	mutex_lock(&a->lock);
	if (a->m && !mdraid_k_status(a->m, &st))
		v = st.bitmap_chunk;
	mutex_unlock(&a->lock);
	return sysfs_emit(buf, "%llu\n", v);
}

static ssize_t chunksize_store(struct kobject *k, struct kobj_attribute *at, const char *buf,
			       size_t len)
{
	struct mdr_array *a = mdr_bm_array(k);
	ssize_t r = len;
	u64 v;

	if (kstrtou64(buf, 10, &v) || (v && (v < 4096 || !is_power_of_2(v))))
		return -EINVAL;
	mutex_lock(&a->lock);
	if (a->m)
		r = -EBUSY;
	else
		a->bitmap_chunk = v;
	mutex_unlock(&a->lock);
	return r;
}

static struct kobj_attribute mdr_bm_location = __ATTR(location, 0644, location_show,
						      location_store);
static struct kobj_attribute mdr_bm_chunksize = __ATTR(chunksize, 0644, chunksize_show,
						       chunksize_store);
static struct attribute *mdr_bm_attrs[] = { &mdr_bm_location.attr, &mdr_bm_chunksize.attr,
					    NULL };
static const struct attribute_group mdr_bm_group = { .attrs = mdr_bm_attrs };

/* ---- md/dev-<name>/ ---- */

static int mdr_dev_index(struct mdr_array *a, struct mdr_member *mem)
{
	int i;

	for (i = 0; i < a->nmem; i++)
		if (a->mem[i] == mem)
			return i;
	return -1;
}

static ssize_t dev_state_show(struct mdr_array *a, struct mdr_member *mem, int i, char *buf)
{
	static const char *const names[] = { "in_sync", "spare", "faulty", "spare" };
	struct mdraid_k_member mi;

	if (i < 0 || mdraid_k_member(a->m, i, &mi))
		return sysfs_emit(buf, "\n");
	return sysfs_emit(buf, "%s%s\n", names[mi.state & 3], mi.write_mostly ? ",write_mostly" : "");
}

static ssize_t dev_state_store(struct mdr_array *a, struct mdr_member *mem, int i,
			       const char *buf, size_t len)
{
	struct mdraid_k_member mi;
	int err;

	if (mdr_word(buf, len, "faulty")) {
		if (i < 0)
			return -EBUSY;
		err = mdraid_k_cmd(a->m, MDRAID_K_CMD_FAIL, i);
		mdr_kick(a);
		return err ? err : len;
	}
	if (!mdr_word(buf, len, "remove"))
		return -EINVAL;
	if (i < 0) {
		mdr_member_release(a, mem); /* not (yet) in a running array */
		return len;
	}
	if (mdraid_k_member(a->m, i, &mi) || mi.state == 0 || mi.state == 3)
		return -EBUSY; /* md: only faulty or spare devices can be removed */
	err = mdraid_k_cmd(a->m, MDRAID_K_CMD_REMOVE, i);
	if (err)
		return err;
	memmove(&a->mem[i], &a->mem[i + 1], (a->nmem - i - 1) * sizeof(mem));
	a->nmem--;
	mdr_member_release(a, mem);
	mdr_kick(a);
	return len;
}

static ssize_t dev_slot_show(struct mdr_array *a, struct mdr_member *mem, int i, char *buf)
{
	struct mdraid_k_member mi;

	if (i < 0 || mdraid_k_member(a->m, i, &mi) || mi.slot == U32_MAX)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%u\n", mi.slot);
}

static ssize_t dev_errors_show(struct mdr_array *a, struct mdr_member *mem, int i, char *buf)
{
	struct mdraid_k_member mi;

	if (i < 0 || mdraid_k_member(a->m, i, &mi))
		return sysfs_emit(buf, "0\n");
	return sysfs_emit(buf, "%llu\n", mi.errors);
}

static struct mdr_dev_attr mdr_dev_state = __ATTR(state, 0644, dev_state_show, dev_state_store);
static struct mdr_dev_attr mdr_dev_slot = __ATTR(slot, 0444, dev_slot_show, NULL);
static struct mdr_dev_attr mdr_dev_errors = __ATTR(errors, 0444, dev_errors_show, NULL);
static struct attribute *mdr_dev_attrs[] = { &mdr_dev_state.attr, &mdr_dev_slot.attr,
					     &mdr_dev_errors.attr, NULL };
ATTRIBUTE_GROUPS(mdr_dev);

static ssize_t mdr_dev_show(struct kobject *k, struct attribute *at, char *buf)
{
	struct mdr_member *mem = container_of(k, struct mdr_member, kobj);
	struct mdr_dev_attr *da = container_of(at, struct mdr_dev_attr, attr);
	struct mdr_array *a = mem->a;
	ssize_t r;

	mutex_lock(&a->lock);
	r = da->show(a, mem, mdr_dev_index(a, mem), buf);
	mutex_unlock(&a->lock);
	return r;
}

static ssize_t mdr_dev_store(struct kobject *k, struct attribute *at, const char *buf,
			     size_t len)
{
	struct mdr_member *mem = container_of(k, struct mdr_member, kobj);
	struct mdr_dev_attr *da = container_of(at, struct mdr_dev_attr, attr);
	struct mdr_array *a = mem->a;
	ssize_t r;

	if (!da->store)
		return -EIO;
	kobject_get(&a->md_kobj);
	mutex_lock(&a->lock);
	r = da->store(a, mem, mdr_dev_index(a, mem), buf, len);
	mutex_unlock(&a->lock);
	kobject_put(&a->md_kobj);
	return r;
}

static const struct sysfs_ops mdr_dev_ops = { .show = mdr_dev_show, .store = mdr_dev_store };

static void mdr_dev_release(struct kobject *k)
{
	kfree(container_of(k, struct mdr_member, kobj));
}

static const struct kobj_type mdr_dev_ktype = {
	.sysfs_ops = &mdr_dev_ops,
	.release = mdr_dev_release,
	.default_groups = mdr_dev_groups,
};

int mdr_member_sysfs_add(struct mdr_array *a, struct mdr_member *mem)
{
	int err;

	INIT_WORK(&mem->free_work, mdr_member_free_work);
	err = kobject_init_and_add(&mem->kobj, &mdr_dev_ktype, &a->md_kobj, "dev-%s",
				       mem->name);

	if (err) {
		mdr_member_close(mem);
		kobject_put(&mem->kobj); /* frees mem */
		return err;
	}
	mem->kobj_added = true;
	return 0;
}

int mdr_sysfs_add(struct mdr_array *a)
{
	int err = kobject_init_and_add(&a->md_kobj, &mdr_md_ktype, &disk_to_dev(a->disk)->kobj,
				       "md");

	if (err)
		return err;
	a->bitmap_kobj = kobject_create_and_add("bitmap", &a->md_kobj);
	if (!a->bitmap_kobj || sysfs_create_group(a->bitmap_kobj, &mdr_bm_group))
		pr_warn("mdraid_k: %s: no md/bitmap/\n", a->disk->disk_name);
	return 0;
}

void mdr_sysfs_del(struct mdr_array *a)
{
	if (a->bitmap_kobj) {
		kobject_del(a->bitmap_kobj);
		kobject_put(a->bitmap_kobj);
		a->bitmap_kobj = NULL;
	}
	kobject_del(&a->md_kobj);
}

void mdr_sysfs_put(struct mdr_array *a)
{
	kobject_put(&a->md_kobj);
}
