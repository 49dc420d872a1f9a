//! Construction: [`Raid1::new`] validates the [`Raid1Config`] and sizes every pool.
//!
//! All of the engine's memory (request and member-I/O slots, queues, waiter lists, the metadata
//! token table, scratch and sync buffers, the bitmap) is reserved here, so the I/O path never
//! allocates. Kept apart because it runs once and touches every field, not any I/O logic.

use super::*;

impl Raid1 {
    /// Builds an engine, sizing every pool from `config`.
    pub fn new(config: Raid1Config) -> Result<Raid1, EngineError> {
        let slots = config.members.len();
        if slots == 0 || slots > MAX_SLOTS {
            return Err(EngineError::InvalidConfig("slots must be 1..=64"));
        }
        if config.raid_disks == 0 || config.raid_disks > slots {
            return Err(EngineError::InvalidConfig(
                "raid_disks must be 1..=members.len()",
            ));
        }
        if config.sync_buffers > 4096 || config.sync_window > 4096 {
            return Err(EngineError::InvalidConfig("sync pool too large"));
        }
        if config.sync_buffers > 0 && config.sync_window == 0 {
            return Err(EngineError::InvalidConfig("sync window of zero blocks"));
        }
        if config.sync_speed_max_kib == 0 || config.sync_speed_min_kib > config.sync_speed_max_kib {
            return Err(EngineError::InvalidConfig("sync speed limits inconsistent"));
        }
        if config.array_sectors == 0 {
            return Err(EngineError::InvalidConfig("array size is zero"));
        }
        if config.max_requests == 0 || config.max_member_ios == 0 {
            return Err(EngineError::InvalidConfig("pool sizes must be non-zero"));
        }
        if config.max_requests > u32::MAX as usize / 2
            || config.max_member_ios > u32::MAX as usize / 2
            || config.fix_buffers > 4096
        {
            return Err(EngineError::InvalidConfig("pool size too large"));
        }
        let fix_bytes = config
            .fix_buffer_sectors
            .checked_mul(crate::SECTOR_SIZE)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b <= 16 << 20)
            .ok_or(EngineError::InvalidConfig("fix buffer too large"))?;
        if config.fix_buffers > 0 && fix_bytes == 0 {
            return Err(EngineError::InvalidConfig("fix buffers of zero sectors"));
        }

        let mut mirrors = Vec::new();
        reserve(&mut mirrors, slots)?;
        for (i, m) in config.members.iter().enumerate() {
            if m.present && !m.spare && i >= config.raid_disks {
                return Err(EngineError::InvalidConfig(
                    "members past raid_disks must be spares or missing",
                ));
            }
            let state = if !m.present {
                PositionState::Missing
            } else if m.spare {
                PositionState::Spare
            } else if m.in_sync {
                PositionState::InSync
            } else {
                PositionState::Recovering {
                    recovery_offset: m.recovery_offset,
                }
            };
            let bb = match &m.bad_blocks {
                None => None,
                Some(t) => {
                    if !check_table(t) {
                        return Err(EngineError::InvalidConfig(
                            "bad-block list unsorted, overlapping or over capacity",
                        ));
                    }
                    let mut r = Vec::new();
                    reserve(&mut r, t.capacity.saturating_add(1).max(t.ranges.len()))?;
                    r.extend_from_slice(&t.ranges);
                    Some((r, t.capacity))
                }
            };
            mirrors.push(Mirror {
                state,
                write_mostly: m.write_mostly,
                failfast: m.failfast,
                rotational: m.rotational,
                bb,
                head_position: 0,
                next_seq_sect: u64::MAX,
                seq_start: u64::MAX,
                counters: MemberCounters::default(),
                last_read_error: None,
                slot: if state.is_working() { Some(i) } else { None },
                epoch: 0,
                bitmap_below: if state.is_working() && !m.in_sync {
                    m.bitmap_recovery_below
                } else {
                    0
                },
            });
        }

        let sync_window = if config.sync_buffers == 0 {
            0
        } else {
            config.sync_window
        };
        let total_reqs = config.max_requests + config.fix_buffers + sync_window;
        let mut reqs = Vec::new();
        reserve(&mut reqs, total_reqs)?;
        for _ in 0..total_reqs {
            let mut r = Req::empty();
            reserve(&mut r.retries, 4)?;
            reqs.push(r);
        }
        let mut free_reqs = Vec::new();
        reserve(&mut free_reqs, total_reqs)?;
        free_reqs.extend((0..total_reqs).rev());
        let mut order = VecDeque::new();
        order
            .try_reserve_exact(total_reqs)
            .map_err(|_| EngineError::NoMemory)?;
        let mut work = BinaryHeap::new();
        work.try_reserve_exact(2 * total_reqs + 2)
            .map_err(|_| EngineError::NoMemory)?;
        let mut conflict_waiters = Vec::new();
        reserve(&mut conflict_waiters, total_reqs)?;
        let mut gate_waiters = Vec::new();
        reserve(&mut gate_waiters, total_reqs)?;
        let mut pool_waiters = Vec::new();
        reserve(&mut pool_waiters, total_reqs)?;

        let mut ios = Vec::new();
        reserve(&mut ios, config.max_member_ios)?;
        for _ in 0..config.max_member_ios {
            ios.push(IoSlot {
                live: false,
                gen: 0,
                req: 0,
                member: 0,
                kind: MemberIoKind::Read,
                sector: 0,
                sectors: 0,
                blocked: 0,
                fix_targets: 0,
                failfast: false,
                epoch: 0,
                buf: BufRef(0),
                buf_offset: 0,
            });
        }
        let mut free_ios = Vec::new();
        reserve(&mut free_ios, config.max_member_ios)?;
        free_ios.extend((0..config.max_member_ios).rev());
        let mut out_ios = VecDeque::new();
        out_ios
            .try_reserve_exact(config.max_member_ios)
            .map_err(|_| EngineError::NoMemory)?;
        let mut completions = VecDeque::new();
        completions
            .try_reserve_exact(config.max_requests)
            .map_err(|_| EngineError::NoMemory)?;

        // Mandatory tokens: dirty + clean, one bitmap set and one event per slot per request,
        // one member failure per slot; plus the optional budget.
        // Sync blocks reserve one event per slot each, like requests, plus the sync events.
        let meta_cap = (config.max_requests + sync_window)
            .saturating_mul(slots + 1)
            .saturating_add(slots + 2 + OPTIONAL_EVENTS)
            .saturating_add(SYNC_EVENTS + 2 * slots);
        let mut events = VecDeque::new();
        events
            .try_reserve_exact(meta_cap)
            .map_err(|_| EngineError::NoMemory)?;
        let mut pending_meta = Vec::new();
        reserve(&mut pending_meta, meta_cap)?;
        let mut unrecorded_failures = Vec::new();
        reserve(&mut unrecorded_failures, slots)?;

        let mut scratch = Vec::new();
        reserve(&mut scratch, config.fix_buffers + config.sync_buffers)?;
        for _ in 0..config.fix_buffers {
            let mut b = Vec::new();
            reserve(&mut b, fix_bytes)?;
            b.resize(fix_bytes, 0);
            scratch.push(b);
        }
        let sync_bytes = (SYNC_BLOCK_SECTORS * crate::SECTOR_SIZE) as usize;
        let mut sync_free = Vec::new();
        reserve(&mut sync_free, config.sync_buffers)?;
        for i in 0..config.sync_buffers {
            let mut b = Vec::new();
            reserve(&mut b, sync_bytes)?;
            b.resize(sync_bytes, 0);
            scratch.push(b);
            sync_free.push(config.fix_buffers + config.sync_buffers - 1 - i);
        }
        let mut sync_blocks = VecDeque::new();
        sync_blocks
            .try_reserve_exact(sync_window)
            .map_err(|_| EngineError::NoMemory)?;
        let mut scratch_busy = Vec::new();
        reserve(&mut scratch_busy, config.fix_buffers)?;
        scratch_busy.resize(config.fix_buffers, false);

        let all_in_sync = fully_in_sync(&mirrors, config.raid_disks);
        let bitmap = match &config.bitmap {
            None => None,
            Some(b) => {
                if b.chunk_sectors == 0 || b.daemon_sleep_ns == 0 {
                    return Err(EngineError::InvalidConfig(
                        "bitmap chunk or daemon period zero",
                    ));
                }
                let n = config.array_sectors.div_ceil(b.chunk_sectors);
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= 1 << 28)
                    .ok_or(EngineError::InvalidConfig("too many bitmap chunks"))?;
                let mut chunks = Vec::new();
                reserve(&mut chunks, n)?;
                chunks.resize(n, Chunk::default());
                for &(first, count) in &b.set_chunks {
                    let end = first.saturating_add(count).min(n as u64);
                    for c in first..end {
                        if let Some(ch) = chunks.get_mut(c as usize) {
                            ch.state = CHUNK_SET;
                            ch.needed = !all_in_sync;
                        }
                    }
                }
                Some(Bitmap {
                    chunk_sectors: b.chunk_sectors,
                    daemon_sleep: b.daemon_sleep_ns,
                    chunks,
                })
            }
        };

        let mut e = Raid1 {
            mirrors,
            array_sectors: config.array_sectors,
            resync_offset: config.resync_offset,
            max_requests: config.max_requests,
            max_read_errors: config.max_read_errors,
            safemode_delay: config.safemode_delay_ns,
            fix_sectors: config.fix_buffer_sectors,
            reqs,
            free_reqs,
            order,
            user_live: 0,
            live_fixes: 0,
            ios,
            free_ios,
            out_ios,
            completions,
            events,
            pending_meta,
            unrecorded_failures,
            failures_owed: 0,
            meta_cap,
            optional_pending: 0,
            next_token: 1,
            dirty: if config.start_clean {
                DirtyState::Clean
            } else {
                DirtyState::Dirty
            },
            now: 0,
            safemode_deadline: None,
            daemon_deadline: None,
            bitmap,
            scratch,
            scratch_busy,
            raid_disks: config.raid_disks,
            sync_free,
            sync_buffers: config.sync_buffers,
            sync_window,
            sync_speed_min: config.sync_speed_min_kib,
            sync_speed_max: config.sync_speed_max_kib,
            sync_blocks,
            sync: None,
            want_recovery: false,
            auto_resync: false,
            frozen: false,
            last_mismatch: 0,
            last_user_submit: None,
            next_seq: 1,
            writers: 0,
            user_writes: 0,
            work,
            round: 0,
            in_round: false,
            cursor: 0,
            full_now: false,
            full_next: false,
            emit_starved: false,
            conflict_waiters,
            gate_waiters,
            pool_waiters,
            fast: fast::FastReads::default(),
            direct_live: 0,
            #[cfg(test)]
            always_full: false,
        };
        if !config.start_clean {
            e.safemode_deadline = Some(e.safemode_delay);
        }
        if let Some(b) = &e.bitmap {
            if b.chunks.iter().any(|c| c.state == CHUNK_SET) {
                e.daemon_deadline = Some(b.daemon_sleep);
            }
        }
        Ok(e)
    }
}
