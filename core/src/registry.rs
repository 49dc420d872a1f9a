//! md's object model as a value: units, names, refcounted handles, removal rules.
//!
//! The kernel keeps every md array on one global list (`all_mddevs`) guarded by a spinlock. Here
//! that list is a [`Registry`] value: the kernel shim holds one behind its own lock, std users can
//! share one across threads through [`SharedRegistry`]. The rules are md's (drivers/md/md.c):
//!
//! - **Units.** An array is identified by its unit, the minor number N of `/dev/mdN` under md's
//!   major (9). Units run from 0 to [`MAX_UNIT`] (`MINORMASK`, minors are 20 bits). md's legacy
//!   partitionable major (`mdp`, `/dev/md_dN`, units = minor >> 6) is not modelled.
//! - **Create on open.** [`Registry::probe`] is md's `md_probe` + `md_open`: opening a unit that has
//!   no array creates an empty, [`Clear`](ArrayState::Clear) one, except for units at or above
//!   [`FIRST_NAMED_UNIT`] (512), which md reserves for named arrays and never creates on open.
//! - **Named arrays.** [`Registry::alloc_named`] (md's `new_array` parameter with an `md_*` name)
//!   picks a unit with a rotating cursor that starts at 512 and wraps from [`MAX_UNIT`] to 0, like
//!   md's `mddev_alloc_unit`. Names are disk names: they start with `md_` and are shorter than
//!   [`DISK_NAME_LEN`]; a duplicate is refused with EEXIST. [`Registry::alloc_unit`] is `new_array`
//!   with `mdNNN`: that exact unit, EEXIST if taken.
//! - **Handles.** Every reference is an [`ArrayHandle`] token (md's `mddev->active`). Handles are
//!   not `Clone`: [`Registry::dup`] takes another reference, [`Registry::put`] gives one back. A
//!   handle remembers the array's generation, so a handle to a removed array that was later
//!   re-created at the same unit is refused ([`RegistryError::StaleHandle`]) instead of touching
//!   the new one.
//! - **Holds.** md keeps a freshly created array alive before anyone configures it:
//!   `UNTIL_IOCTL` for create-on-open and `mdNNN` arrays (dropped by the first ioctl that does not
//!   fail with EINVAL, see [`Registry::note_ioctl`]), `UNTIL_STOP` for named arrays (dropped by a
//!   full stop). See [`Hold`].
//! - **Removal** (md's `mddev_put`). When the last reference is put and the array is
//!   [`Clear`](ArrayState::Clear) (not configured, not running), has no members and no hold, it is
//!   removed and its payload handed back to the caller to drop outside any lock.
//!   [`Registry::remove`] removes explicitly and refuses (EBUSY) while the array is running,
//!   configured, has members or has holders.
//! - **Deleted arrays** (md's `MD_DELETED`). A full [`stop`](Registry::stop) clears the array and
//!   marks it deleted: from then on it refuses new holders ([`RegistryError::Deleted`], ENODEV,
//!   what `md_open` returns) and reconfiguration, and it disappears when its last holder puts.
//!   A later probe of the same unit creates a fresh array with a new generation.
//!
//! Handles carry no registry identity: a handle must only be given back to the registry that
//! issued it.

use core::fmt;

use alloc::collections::BTreeMap;

/// md's first unit for auto-picked named arrays; also the first unit that is never created on open.
pub const FIRST_NAMED_UNIT: u32 = 512;

/// The largest unit: `MINORMASK`, since minor numbers are `MINORBITS` = 20 bits wide.
pub const MAX_UNIT: u32 = (1 << 20) - 1;

/// md's `DISK_NAME_LEN`: a disk name (with its NUL) fits in 32 bytes, so at most 31 characters.
pub const DISK_NAME_LEN: usize = 32;

// errno values (Linux, all architectures md runs on).
const ENOENT: i32 = 2;
const ENXIO: i32 = 6;
const E2BIG: i32 = 7;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const EOVERFLOW: i32 = 75;
const ESTALE: i32 = 116;

/// A block-device name such as `md5` or `md_home`: at most 31 bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiskName {
    len: u8,
    buf: [u8; DISK_NAME_LEN - 1],
}

impl DiskName {
    /// The name of an unnamed array: `md<unit>`.
    pub fn for_unit(unit: u32) -> Self {
        let mut name = DiskName {
            len: 0,
            buf: [0; DISK_NAME_LEN - 1],
        };
        // "md" + at most 10 digits always fits in 31 bytes.
        let _ = fmt::Write::write_fmt(&mut name, format_args!("md{unit}"));
        name
    }

    /// Copies `s` if it fits (at most 31 bytes).
    fn from_str(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        let mut buf = [0; DISK_NAME_LEN - 1];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(DiskName {
            len: u8::try_from(bytes.len()).ok()?,
            buf,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only ever filled from `&str`s cut at whole strings, so always UTF-8.
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Write for DiskName {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(start..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

impl fmt::Display for DiskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DiskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Why an array cannot be removed, stopped or reconfigured right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusyReason {
    /// It is running.
    Running,
    /// It is configured (inactive, but holds array settings).
    Configured,
    /// It still has member devices.
    Members,
    /// Someone else holds a reference to it.
    Holders,
}

impl fmt::Display for BusyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusyReason::Running => "it is running",
            BusyReason::Configured => "it is configured",
            BusyReason::Members => "it has member devices",
            BusyReason::Holders => "it is in use",
        })
    }
}

/// Registry misuse. Each variant maps to the errno md answers with, see [`RegistryError::errno`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The unit is already taken (EEXIST).
    #[error("md{unit} already exists")]
    Exists {
        /// The unit asked for.
        unit: u32,
    },
    /// An array with that name already exists (EEXIST).
    #[error("an array named {name} already exists")]
    NameExists {
        /// The name asked for.
        name: DiskName,
    },
    /// No array has that unit or name (ENOENT).
    #[error("no such array")]
    NotFound,
    /// Opening a unit with no array where create-on-open does not apply (ENXIO, what opening a
    /// missing block device gives).
    #[error("md{unit} does not exist and is not created on open")]
    NoDevice {
        /// The unit asked for.
        unit: u32,
    },
    /// The array is stopped and being deleted; it takes no new holders and no changes (ENODEV).
    #[error("md{unit} is being deleted")]
    Deleted {
        /// The array's unit.
        unit: u32,
    },
    /// Every unit is in use, so no unit can be picked for a named array (ENODEV, as md answers).
    #[error("no free md unit")]
    NoFreeUnit,
    /// The array is in use (EBUSY).
    #[error("md{unit} is busy: {reason}")]
    Busy {
        /// The array's unit.
        unit: u32,
        /// What keeps it busy.
        reason: BusyReason,
    },
    /// The handle's array was removed (the unit may since hold a new array) (ESTALE).
    #[error("stale handle for md{unit}")]
    StaleHandle {
        /// The handle's unit.
        unit: u32,
    },
    /// The unit is beyond the registry's largest unit (EINVAL).
    #[error("md unit {unit} is out of range (largest is {max})")]
    InvalidUnit {
        /// The unit asked for.
        unit: u32,
        /// The largest valid unit.
        max: u32,
    },
    /// The name is not `md_*` or `mdNNN` as required, or has characters a disk name cannot hold
    /// (EINVAL).
    #[error("invalid array name")]
    InvalidName,
    /// The name does not fit a disk name (at most 31 bytes) (E2BIG).
    #[error("array name of {len} bytes is too long (at most 31)")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// Running an array without members, or removing a member it does not have (EINVAL).
    #[error("md{unit} has no member devices")]
    NoMembers {
        /// The array's unit.
        unit: u32,
    },
    /// A holder or member count would overflow (EOVERFLOW).
    #[error("md{unit}: counter overflow")]
    CounterOverflow {
        /// The array's unit.
        unit: u32,
    },
}

impl RegistryError {
    /// The (positive) errno md answers with for this error.
    pub fn errno(&self) -> i32 {
        match self {
            RegistryError::Exists { .. } | RegistryError::NameExists { .. } => EEXIST,
            RegistryError::NotFound => ENOENT,
            RegistryError::NoDevice { .. } => ENXIO,
            RegistryError::Deleted { .. } | RegistryError::NoFreeUnit => ENODEV,
            RegistryError::Busy { .. } => EBUSY,
            RegistryError::StaleHandle { .. } => ESTALE,
            RegistryError::InvalidUnit { .. }
            | RegistryError::InvalidName
            | RegistryError::NoMembers { .. } => EINVAL,
            RegistryError::NameTooLong { .. } => E2BIG,
            RegistryError::CounterOverflow { .. } => EOVERFLOW,
        }
    }
}

/// An array's lifecycle state, as md's `array_state` reports it (coarsely).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArrayState {
    /// Not configured at all (md's "clear": no level, no size, no superblock settings).
    Clear,
    /// Configured but not running (md's "inactive").
    Inactive,
    /// Running (md has a personality attached).
    Active,
}

/// What keeps an otherwise unused array alive (md's `hold_active`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hold {
    /// Nothing: the array goes when it is clear, memberless and unreferenced.
    None,
    /// Created on open or as `mdNNN`: kept until the first ioctl that does not fail with EINVAL
    /// ([`Registry::note_ioctl`]) or a full stop.
    UntilIoctl,
    /// Created by name: kept until a full stop.
    UntilStop,
}

/// A counted reference to one array, issued by a [`Registry`].
///
/// Not `Clone`: each handle is one reference. Give it back with [`Registry::put`]; dropping it
/// instead leaks the reference and keeps the array alive. A handle whose array was removed is
/// refused with [`RegistryError::StaleHandle`].
#[must_use = "a handle is a reference: give it back with Registry::put"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ArrayHandle {
    unit: u32,
    generation: u64,
}

impl ArrayHandle {
    /// The array's unit.
    pub fn unit(&self) -> u32 {
        self.unit
    }

    /// The array's generation: unique per array created by the issuing registry.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// A snapshot of one array's registry state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    /// The unit (minor).
    pub unit: u32,
    /// The generation (unique per array created by this registry).
    pub generation: u64,
    /// The name, for arrays created by name.
    pub name: Option<DiskName>,
    /// Lifecycle state.
    pub state: ArrayState,
    /// Member devices attached.
    pub members: u32,
    /// References held.
    pub holders: u32,
    /// What keeps it alive while unused.
    pub hold: Hold,
    /// Stopped and waiting for its last holder to go.
    pub deleted: bool,
}

impl ArrayInfo {
    /// The block-device name: the array's name, or `md<unit>`.
    pub fn disk_name(&self) -> DiskName {
        self.name.unwrap_or_else(|| DiskName::for_unit(self.unit))
    }
}

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    name: Option<DiskName>,
    state: ArrayState,
    members: u32,
    holders: u32,
    hold: Hold,
    deleted: bool,
    payload: T,
}

impl<T> Entry<T> {
    /// md's `__mddev_put` test: nothing but references keeps this array.
    fn unused(&self) -> bool {
        self.state == ArrayState::Clear && self.members == 0 && self.hold == Hold::None
    }

    fn info(&self, unit: u32) -> ArrayInfo {
        ArrayInfo {
            unit,
            generation: self.generation,
            name: self.name,
            state: self.state,
            members: self.members,
            holders: self.holders,
            hold: self.hold,
            deleted: self.deleted,
        }
    }

    fn live(&self, unit: u32) -> Result<(), RegistryError> {
        if self.deleted {
            Err(RegistryError::Deleted { unit })
        } else {
            Ok(())
        }
    }
}

/// All md arrays known to one host: md's `all_mddevs` list as a value.
///
/// `T` is the per-array payload (the array object); arrays created by the registry start with
/// `T::default()`. Every method is `&mut self` for changes; wrap the registry in a lock to share it
/// (see [`SharedRegistry`] under `std`).
#[derive(Debug)]
pub struct Registry<T> {
    arrays: BTreeMap<u32, Entry<T>>,
    max_unit: u32,
    next_unit: u32,
    next_generation: u64,
    create_on_open: bool,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Registry<T> {
    /// An empty registry over md's full unit space (0..=[`MAX_UNIT`]), with create-on-open on.
    pub fn new() -> Self {
        Registry {
            arrays: BTreeMap::new(),
            max_unit: MAX_UNIT,
            next_unit: FIRST_NAMED_UNIT,
            next_generation: 1,
            create_on_open: true,
        }
    }

    /// An empty registry whose units stop at `max_unit` (at most [`MAX_UNIT`]), bounding how
    /// many arrays can exist at once.
    pub fn with_max_unit(max_unit: u32) -> Result<Self, RegistryError> {
        if max_unit > MAX_UNIT {
            return Err(RegistryError::InvalidUnit {
                unit: max_unit,
                max: MAX_UNIT,
            });
        }
        let mut r = Self::new();
        r.max_unit = max_unit;
        if r.next_unit > max_unit {
            r.next_unit = 0;
        }
        Ok(r)
    }

    /// The largest unit this registry hands out.
    pub fn max_unit(&self) -> u32 {
        self.max_unit
    }

    /// md's `create_on_open` module parameter (default on): whether [`probe`](Self::probe)
    /// creates missing arrays.
    pub fn set_create_on_open(&mut self, on: bool) {
        self.create_on_open = on;
    }

    /// See [`set_create_on_open`](Self::set_create_on_open).
    pub fn create_on_open(&self) -> bool {
        self.create_on_open
    }

    /// Number of arrays, deleted ones included.
    pub fn len(&self) -> usize {
        self.arrays.len()
    }

    /// True if there are no arrays.
    pub fn is_empty(&self) -> bool {
        self.arrays.is_empty()
    }

    /// The array at `unit`, if any, without taking a reference.
    pub fn info(&self, unit: u32) -> Option<ArrayInfo> {
        self.arrays.get(&unit).map(|e| e.info(unit))
    }

    /// The handle's array.
    pub fn info_of(&self, h: &ArrayHandle) -> Result<ArrayInfo, RegistryError> {
        self.entry(h).map(|e| e.info(h.unit))
    }

    /// Every array in unit order (deleted ones included, flagged), like walking `all_mddevs`.
    pub fn iter(&self) -> impl Iterator<Item = ArrayInfo> + '_ {
        self.arrays.iter().map(|(&unit, e)| e.info(unit))
    }

    /// The unit of the array whose disk name is `name` (`md_*` for named arrays, `mdN` for the
    /// others), without taking a reference.
    pub fn find_name(&self, name: &str) -> Option<u32> {
        if let Some(unit) = parse_unit_name(name) {
            let e = self.arrays.get(&unit)?;
            return e.name.is_none().then_some(unit);
        }
        self.arrays
            .iter()
            .find(|(_, e)| e.name.is_some_and(|n| n.as_str() == name))
            .map(|(&unit, _)| unit)
    }

    /// Takes a reference to the array at `unit` (md's `mddev_find` + `mddev_get`); never creates.
    pub fn get(&mut self, unit: u32) -> Result<ArrayHandle, RegistryError> {
        let e = self.arrays.get_mut(&unit).ok_or(RegistryError::NotFound)?;
        Self::hold_ref(unit, e)
    }

    /// Takes a reference to the array whose disk name is `name` (see [`find_name`](Self::find_name)).
    pub fn lookup_name(&mut self, name: &str) -> Result<ArrayHandle, RegistryError> {
        let unit = self.find_name(name).ok_or(RegistryError::NotFound)?;
        self.get(unit)
    }

    /// Takes one more reference to the handle's array.
    pub fn dup(&mut self, h: &ArrayHandle) -> Result<ArrayHandle, RegistryError> {
        let e = self.entry_mut(h)?;
        Self::hold_ref(h.unit, e)
    }

    /// Gives a reference back (md's `mddev_put`). When it was the last one and the array is
    /// clear, memberless and not held, the array is removed and its payload returned, so the
    /// caller can drop it outside any lock.
    pub fn put(&mut self, h: ArrayHandle) -> Result<Option<T>, RegistryError> {
        let unit = h.unit;
        let e = self.entry_mut(&h)?;
        e.holders = e
            .holders
            .checked_sub(1)
            .ok_or(RegistryError::StaleHandle { unit })?;
        if e.holders == 0 && e.unused() {
            Ok(self.arrays.remove(&unit).map(|e| e.payload))
        } else {
            Ok(None)
        }
    }

    /// Opens `unit` (md's `md_probe` then `md_open`): takes a reference to its array, creating an
    /// empty [`Clear`](ArrayState::Clear) one held [`UntilIoctl`](Hold::UntilIoctl) if there is
    /// none. Units from [`FIRST_NAMED_UNIT`] up, or any unit with create-on-open off, are never
    /// created ([`RegistryError::NoDevice`]).
    pub fn probe(&mut self, unit: u32) -> Result<ArrayHandle, RegistryError>
    where
        T: Default,
    {
        self.check_unit(unit)?;
        if let Some(e) = self.arrays.get_mut(&unit) {
            return Self::hold_ref(unit, e);
        }
        if !self.create_on_open || unit >= FIRST_NAMED_UNIT {
            return Err(RegistryError::NoDevice { unit });
        }
        self.insert(unit, None, Hold::UntilIoctl)
    }

    /// Creates a named array (md's `new_array` with `md_*`) at the next free unit from md's
    /// rotating cursor (512 up, wrapping to 0), held [`UntilStop`](Hold::UntilStop), and returns
    /// a reference to it.
    pub fn alloc_named(&mut self, name: &str) -> Result<ArrayHandle, RegistryError>
    where
        T: Default,
    {
        let name = check_name(name)?;
        if !name.as_str().starts_with("md_") {
            return Err(RegistryError::InvalidName);
        }
        if self.find_name(name.as_str()).is_some() {
            return Err(RegistryError::NameExists { name });
        }
        let unit = self.pick_unit().ok_or(RegistryError::NoFreeUnit)?;
        let h = self.insert(unit, Some(name), Hold::UntilStop)?;
        self.next_unit = if unit >= self.max_unit { 0 } else { unit + 1 };
        Ok(h)
    }

    /// Creates an array at exactly `unit` (md's `new_array` with `mdNNN`), held
    /// [`UntilIoctl`](Hold::UntilIoctl), and returns a reference to it. EEXIST if the unit is taken.
    pub fn alloc_unit(&mut self, unit: u32) -> Result<ArrayHandle, RegistryError>
    where
        T: Default,
    {
        self.check_unit(unit)?;
        if self.arrays.contains_key(&unit) {
            return Err(RegistryError::Exists { unit });
        }
        self.insert(unit, None, Hold::UntilIoctl)
    }

    /// md's `new_array` module parameter: `md_*` creates a named array, `mdNNN` the array at unit
    /// NNN; trailing newlines are ignored. No reference is kept (the new array lives on its
    /// [`Hold`]); returns its unit.
    pub fn new_array(&mut self, val: &str) -> Result<u32, RegistryError>
    where
        T: Default,
    {
        let val = val.trim_end_matches('\n');
        if val.len() >= DISK_NAME_LEN {
            return Err(RegistryError::NameTooLong { len: val.len() });
        }
        let h = if val.starts_with("md_") {
            self.alloc_named(val)?
        } else {
            let unit = parse_unit_name(val).ok_or(RegistryError::InvalidName)?;
            self.alloc_unit(unit)?
        };
        let unit = h.unit;
        // Just created and held, so this put never removes it.
        let _ = self.put(h)?;
        Ok(unit)
    }

    /// Marks the array configured (md's SET_ARRAY_INFO or a loaded superblock): clear becomes
    /// inactive. EBUSY while running.
    pub fn configure(&mut self, h: &ArrayHandle) -> Result<(), RegistryError> {
        let e = self.live_entry_mut(h)?;
        match e.state {
            ArrayState::Active => Err(RegistryError::Busy {
                unit: h.unit,
                reason: BusyReason::Running,
            }),
            ArrayState::Clear | ArrayState::Inactive => {
                e.state = ArrayState::Inactive;
                Ok(())
            }
        }
    }

    /// Starts the array (md's `md_run`): EINVAL without members, EBUSY if already running.
    pub fn set_running(&mut self, h: &ArrayHandle) -> Result<(), RegistryError> {
        let e = self.live_entry_mut(h)?;
        if e.members == 0 {
            return Err(RegistryError::NoMembers { unit: h.unit });
        }
        if e.state == ArrayState::Active {
            return Err(RegistryError::Busy {
                unit: h.unit,
                reason: BusyReason::Running,
            });
        }
        e.state = ArrayState::Active;
        Ok(())
    }

    /// Stops the array but keeps its configuration and members (md's `do_md_stop` mode 2, as
    /// writing "inactive" to `array_state`): running becomes inactive; otherwise nothing changes.
    pub fn set_inactive(&mut self, h: &ArrayHandle) -> Result<(), RegistryError> {
        let e = self.live_entry_mut(h)?;
        if e.state == ArrayState::Active {
            e.state = ArrayState::Inactive;
        }
        Ok(())
    }

    /// Fully stops the array (md's STOP_ARRAY, `do_md_stop` mode 0): detaches every member,
    /// clears the configuration and any hold, and marks the array deleted so it takes no new
    /// holders; it is removed when the last holder puts. A running array with other holders is
    /// refused (EBUSY), as md refuses while others have it open.
    pub fn stop(&mut self, h: &ArrayHandle) -> Result<(), RegistryError> {
        let e = self.live_entry_mut(h)?;
        if e.state == ArrayState::Active && e.holders > 1 {
            return Err(RegistryError::Busy {
                unit: h.unit,
                reason: BusyReason::Holders,
            });
        }
        e.state = ArrayState::Clear;
        e.members = 0;
        e.hold = Hold::None;
        e.deleted = true;
        Ok(())
    }

    /// Records a control operation on the array that did not fail with EINVAL (md's `md_ioctl`
    /// epilogue): drops an [`UntilIoctl`](Hold::UntilIoctl) hold.
    pub fn note_ioctl(&mut self, h: &ArrayHandle) -> Result<(), RegistryError> {
        let e = self.live_entry_mut(h)?;
        if e.hold == Hold::UntilIoctl {
            e.hold = Hold::None;
        }
        Ok(())
    }

    /// Counts one more member device; returns the new count.
    pub fn add_member(&mut self, h: &ArrayHandle) -> Result<u32, RegistryError> {
        let e = self.live_entry_mut(h)?;
        e.members = e
            .members
            .checked_add(1)
            .ok_or(RegistryError::CounterOverflow { unit: h.unit })?;
        Ok(e.members)
    }

    /// Counts one member device fewer; returns the new count. EINVAL if there are none; EBUSY
    /// for the last member of a running array (a running array always has a member, as md refuses
    /// to hot-remove an in-use disk).
    pub fn remove_member(&mut self, h: &ArrayHandle) -> Result<u32, RegistryError> {
        let e = self.live_entry_mut(h)?;
        let members = e
            .members
            .checked_sub(1)
            .ok_or(RegistryError::NoMembers { unit: h.unit })?;
        if members == 0 && e.state == ArrayState::Active {
            return Err(RegistryError::Busy {
                unit: h.unit,
                reason: BusyReason::Running,
            });
        }
        e.members = members;
        Ok(members)
    }

    /// The handle's payload (also while the array is deleted).
    pub fn payload(&self, h: &ArrayHandle) -> Result<&T, RegistryError> {
        self.entry(h).map(|e| &e.payload)
    }

    /// The handle's payload, mutably (also while the array is deleted).
    pub fn payload_mut(&mut self, h: &ArrayHandle) -> Result<&mut T, RegistryError> {
        self.entry_mut(h).map(|e| &mut e.payload)
    }

    /// Removes the array at `unit` now and returns its payload. Only a clear, memberless,
    /// unreferenced array can go (EBUSY otherwise, naming the first reason); its hold, if any, is
    /// overridden.
    pub fn remove(&mut self, unit: u32) -> Result<T, RegistryError> {
        let e = self.arrays.get(&unit).ok_or(RegistryError::NotFound)?;
        let reason = match e.state {
            ArrayState::Active => Some(BusyReason::Running),
            _ if e.members > 0 => Some(BusyReason::Members),
            ArrayState::Inactive => Some(BusyReason::Configured),
            ArrayState::Clear if e.holders > 0 => Some(BusyReason::Holders),
            ArrayState::Clear => None,
        };
        if let Some(reason) = reason {
            return Err(RegistryError::Busy { unit, reason });
        }
        self.arrays
            .remove(&unit)
            .map(|e| e.payload)
            .ok_or(RegistryError::NotFound)
    }

    fn check_unit(&self, unit: u32) -> Result<(), RegistryError> {
        if unit > self.max_unit {
            Err(RegistryError::InvalidUnit {
                unit,
                max: self.max_unit,
            })
        } else {
            Ok(())
        }
    }

    fn hold_ref(unit: u32, e: &mut Entry<T>) -> Result<ArrayHandle, RegistryError> {
        e.live(unit)?;
        e.holders = e
            .holders
            .checked_add(1)
            .ok_or(RegistryError::CounterOverflow { unit })?;
        Ok(ArrayHandle {
            unit,
            generation: e.generation,
        })
    }

    fn entry(&self, h: &ArrayHandle) -> Result<&Entry<T>, RegistryError> {
        match self.arrays.get(&h.unit) {
            Some(e) if e.generation == h.generation => Ok(e),
            _ => Err(RegistryError::StaleHandle { unit: h.unit }),
        }
    }

    fn entry_mut(&mut self, h: &ArrayHandle) -> Result<&mut Entry<T>, RegistryError> {
        match self.arrays.get_mut(&h.unit) {
            Some(e) if e.generation == h.generation => Ok(e),
            _ => Err(RegistryError::StaleHandle { unit: h.unit }),
        }
    }

    fn live_entry_mut(&mut self, h: &ArrayHandle) -> Result<&mut Entry<T>, RegistryError> {
        let e = self.entry_mut(h)?;
        e.live(h.unit)?;
        Ok(e)
    }

    /// Inserts a new array with one reference. The caller checked that `unit` is free and valid.
    fn insert(
        &mut self,
        unit: u32,
        name: Option<DiskName>,
        hold: Hold,
    ) -> Result<ArrayHandle, RegistryError>
    where
        T: Default,
    {
        let generation = self.next_generation;
        // 2^64 creations cannot happen; refuse rather than reuse a generation.
        self.next_generation = generation
            .checked_add(1)
            .ok_or(RegistryError::CounterOverflow { unit })?;
        self.arrays.insert(
            unit,
            Entry {
                generation,
                name,
                state: ArrayState::Clear,
                members: 0,
                holders: 1,
                hold,
                deleted: false,
                payload: T::default(),
            },
        );
        Ok(ArrayHandle { unit, generation })
    }

    /// md's `mddev_alloc_unit`: the first free unit from the cursor up to the largest unit, then
    /// from 0 up to the cursor. (md's loop gives up one candidate early; this scans them all.)
    fn pick_unit(&self) -> Option<u32> {
        let start = self.next_unit.min(self.max_unit);
        first_gap(
            self.arrays.range(start..=self.max_unit).map(|(&u, _)| u),
            start,
        )
        .filter(|&u| u <= self.max_unit)
        .or_else(|| {
            first_gap(self.arrays.range(..start).map(|(&u, _)| u), 0).filter(|&u| u < start)
        })
    }
}

/// The first value from `from` up that `used` (ascending, all >= `from`) does not contain, or
/// `None` if counting up would overflow.
fn first_gap(used: impl Iterator<Item = u32>, from: u32) -> Option<u32> {
    let mut candidate = from;
    for u in used {
        if u != candidate {
            break;
        }
        candidate = candidate.checked_add(1)?;
    }
    Some(candidate)
}

/// Checks that `name` can be a disk name: 1..=31 bytes of printable ASCII other than '/'.
fn check_name(name: &str) -> Result<DiskName, RegistryError> {
    if name.len() >= DISK_NAME_LEN {
        return Err(RegistryError::NameTooLong { len: name.len() });
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err(RegistryError::InvalidName);
    }
    DiskName::from_str(name).ok_or(RegistryError::InvalidName)
}

/// `mdNNN` (decimal, leading zeros allowed) to NNN, if it is that form and NNN <= [`MAX_UNIT`].
fn parse_unit_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("md")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit: u32 = digits.parse().ok()?;
    (unit <= MAX_UNIT).then_some(unit)
}

#[cfg(feature = "std")]
pub use shared::{Holder, SharedRegistry};

#[cfg(feature = "std")]
mod shared {
    use super::{ArrayHandle, ArrayInfo, Registry, RegistryError};
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::vec::Vec;

    /// A [`Registry`] shared across threads: an `Arc<Mutex<Registry<T>>>` whose lookups return
    /// [`Holder`]s that give their reference back when dropped. Cloning shares the same registry.
    #[derive(Debug)]
    pub struct SharedRegistry<T> {
        inner: Arc<Mutex<Registry<T>>>,
    }

    impl<T> Clone for SharedRegistry<T> {
        fn clone(&self) -> Self {
            SharedRegistry {
                inner: Arc::clone(&self.inner),
            }
        }
    }

    impl<T> Default for SharedRegistry<T> {
        fn default() -> Self {
            Self::new(Registry::new())
        }
    }

    impl<T> SharedRegistry<T> {
        /// Shares `registry`.
        pub fn new(registry: Registry<T>) -> Self {
            SharedRegistry {
                inner: Arc::new(Mutex::new(registry)),
            }
        }

        /// Locks the registry for direct use. Registry methods never panic, so a poisoned lock
        /// (a panic elsewhere while it was held) still guards a consistent registry and is used.
        pub fn lock(&self) -> MutexGuard<'_, Registry<T>> {
            self.inner.lock().unwrap_or_else(PoisonError::into_inner)
        }

        fn holder(
            &self,
            f: impl FnOnce(&mut Registry<T>) -> Result<ArrayHandle, RegistryError>,
        ) -> Result<Holder<T>, RegistryError> {
            let handle = f(&mut self.lock())?;
            Ok(Holder {
                registry: self.clone(),
                handle: Some(handle),
            })
        }

        /// [`Registry::probe`].
        pub fn probe(&self, unit: u32) -> Result<Holder<T>, RegistryError>
        where
            T: Default,
        {
            self.holder(|r| r.probe(unit))
        }

        /// [`Registry::get`].
        pub fn get(&self, unit: u32) -> Result<Holder<T>, RegistryError> {
            self.holder(|r| r.get(unit))
        }

        /// [`Registry::lookup_name`].
        pub fn lookup_name(&self, name: &str) -> Result<Holder<T>, RegistryError> {
            self.holder(|r| r.lookup_name(name))
        }

        /// [`Registry::alloc_named`].
        pub fn alloc_named(&self, name: &str) -> Result<Holder<T>, RegistryError>
        where
            T: Default,
        {
            self.holder(|r| r.alloc_named(name))
        }

        /// [`Registry::alloc_unit`].
        pub fn alloc_unit(&self, unit: u32) -> Result<Holder<T>, RegistryError>
        where
            T: Default,
        {
            self.holder(|r| r.alloc_unit(unit))
        }

        /// [`Registry::new_array`].
        pub fn new_array(&self, val: &str) -> Result<u32, RegistryError>
        where
            T: Default,
        {
            self.lock().new_array(val)
        }

        /// [`Registry::remove`]; the payload is returned after the lock is released.
        pub fn remove(&self, unit: u32) -> Result<T, RegistryError> {
            self.lock().remove(unit)
        }

        /// [`Registry::info`].
        pub fn info(&self, unit: u32) -> Option<ArrayInfo> {
            self.lock().info(unit)
        }

        /// Every array, in unit order ([`Registry::iter`] under the lock).
        pub fn snapshot(&self) -> Vec<ArrayInfo> {
            self.lock().iter().collect()
        }
    }

    /// One reference to an array of a [`SharedRegistry`]; put back on drop (a removed array's
    /// payload is dropped after the lock is released).
    #[derive(Debug)]
    #[must_use = "dropping a Holder gives its reference back at once"]
    pub struct Holder<T> {
        registry: SharedRegistry<T>,
        // Always Some until `release` or drop takes it.
        handle: Option<ArrayHandle>,
    }

    impl<T> Holder<T> {
        /// The array's unit.
        pub fn unit(&self) -> u32 {
            self.handle.as_ref().map_or(0, ArrayHandle::unit)
        }

        /// The array's generation.
        pub fn generation(&self) -> u64 {
            self.handle.as_ref().map_or(0, ArrayHandle::generation)
        }

        /// Runs `f` with the locked registry and this holder's handle, for any
        /// [`Registry`] method that takes `&ArrayHandle`.
        pub fn with<R>(
            &self,
            f: impl FnOnce(&mut Registry<T>, &ArrayHandle) -> Result<R, RegistryError>,
        ) -> Result<R, RegistryError> {
            let h = self.handle.as_ref().ok_or(RegistryError::NotFound)?;
            f(&mut self.registry.lock(), h)
        }

        /// Runs `f` on the payload under the lock.
        pub fn with_payload<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, RegistryError> {
            self.with(|r, h| r.payload_mut(h).map(f))
        }

        /// [`Registry::info_of`].
        pub fn info(&self) -> Result<ArrayInfo, RegistryError> {
            self.with(|r, h| r.info_of(h))
        }

        /// Another reference to the same array ([`Registry::dup`]).
        pub fn dup(&self) -> Result<Holder<T>, RegistryError> {
            let handle = self.with(|r, h| r.dup(h))?;
            Ok(Holder {
                registry: self.registry.clone(),
                handle: Some(handle),
            })
        }

        /// [`Registry::configure`].
        pub fn configure(&self) -> Result<(), RegistryError> {
            self.with(|r, h| r.configure(h))
        }

        /// [`Registry::set_running`].
        pub fn set_running(&self) -> Result<(), RegistryError> {
            self.with(|r, h| r.set_running(h))
        }

        /// [`Registry::set_inactive`].
        pub fn set_inactive(&self) -> Result<(), RegistryError> {
            self.with(|r, h| r.set_inactive(h))
        }

        /// [`Registry::stop`].
        pub fn stop(&self) -> Result<(), RegistryError> {
            self.with(|r, h| r.stop(h))
        }

        /// [`Registry::note_ioctl`].
        pub fn note_ioctl(&self) -> Result<(), RegistryError> {
            self.with(|r, h| r.note_ioctl(h))
        }

        /// [`Registry::add_member`].
        pub fn add_member(&self) -> Result<u32, RegistryError> {
            self.with(|r, h| r.add_member(h))
        }

        /// [`Registry::remove_member`].
        pub fn remove_member(&self) -> Result<u32, RegistryError> {
            self.with(|r, h| r.remove_member(h))
        }

        /// Gives the reference back now ([`Registry::put`]): the payload if the array went away.
        pub fn release(mut self) -> Result<Option<T>, RegistryError> {
            self.put()
        }

        fn put(&mut self) -> Result<Option<T>, RegistryError> {
            match self.handle.take() {
                Some(h) => {
                    let mut registry = self.registry.lock();
                    registry.put(h)
                }
                None => Ok(None),
            }
        }
    }

    impl<T> Drop for Holder<T> {
        fn drop(&mut self) {
            // The lock is released inside `put`; a removed payload is dropped here, after it.
            let _ = self.put();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// A payload that remembers which array it belongs to.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Arr {
        tag: u32,
    }

    type Reg = Registry<Arr>;

    fn busy(unit: u32, reason: BusyReason) -> RegistryError {
        RegistryError::Busy { unit, reason }
    }

    #[test]
    fn probe_creates_clear_array_held_until_ioctl() {
        let mut r = Reg::new();
        assert!(r.is_empty());
        let h = r.probe(0).unwrap();
        assert_eq!(h.unit(), 0);
        let i = r.info_of(&h).unwrap();
        assert_eq!(
            i,
            ArrayInfo {
                unit: 0,
                generation: h.generation(),
                name: None,
                state: ArrayState::Clear,
                members: 0,
                holders: 1,
                hold: Hold::UntilIoctl,
                deleted: false,
            }
        );
        assert_eq!(i.disk_name().as_str(), "md0");
        assert_eq!(r.payload(&h).unwrap(), &Arr::default());
        assert_eq!(r.len(), 1);
        assert_eq!(r.put(h).unwrap(), None);
    }

    #[test]
    fn probe_twice_returns_the_same_array() {
        let mut r = Reg::new();
        let a = r.probe(5).unwrap();
        let b = r.probe(5).unwrap();
        assert_eq!(a, b);
        assert_eq!(r.info(5).unwrap().holders, 2);
        r.payload_mut(&a).unwrap().tag = 9;
        assert_eq!(r.payload(&b).unwrap().tag, 9);
        let c = r.dup(&b).unwrap();
        let d = r.get(5).unwrap();
        assert_eq!(r.info(5).unwrap().holders, 4);
        for h in [a, b, c, d] {
            assert_eq!(r.put(h).unwrap(), None);
        }
        assert_eq!(r.info(5).unwrap().holders, 0);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn probed_array_lives_until_first_ioctl_then_goes_on_last_put() {
        let mut r = Reg::new();
        let h = r.probe(1).unwrap();
        // md_probe's UNTIL_IOCTL hold: closing without any ioctl keeps the array.
        assert_eq!(r.put(h).unwrap(), None);
        assert_eq!(r.info(1).unwrap().hold, Hold::UntilIoctl);
        let h = r.probe(1).unwrap();
        let g = r.dup(&h).unwrap();
        r.note_ioctl(&h).unwrap();
        assert_eq!(r.info(1).unwrap().hold, Hold::None);
        assert_eq!(r.put(h).unwrap(), None, "another holder remains");
        r.payload_mut(&g).unwrap().tag = 4;
        // mddev_put: last reference, clear, memberless, not held -> gone.
        assert_eq!(r.put(g).unwrap(), Some(Arr { tag: 4 }));
        assert!(r.info(1).is_none());
        assert_eq!(r.get(1).unwrap_err(), RegistryError::NotFound);
    }

    #[test]
    fn probe_never_creates_named_range_or_when_disabled() {
        let mut r = Reg::new();
        let e = r.probe(FIRST_NAMED_UNIT).unwrap_err();
        assert_eq!(e, RegistryError::NoDevice { unit: 512 });
        assert_eq!(e.errno(), 6);
        assert!(r.is_empty());
        // An existing named array at 512 opens fine.
        let n = r.alloc_named("md_x").unwrap();
        let p = r.probe(512).unwrap();
        assert_eq!(n, p);
        let _ = r.put(n).unwrap();
        let _ = r.put(p).unwrap();

        r.set_create_on_open(false);
        assert!(!r.create_on_open());
        assert_eq!(r.probe(3).unwrap_err(), RegistryError::NoDevice { unit: 3 });
        assert!(r.info(3).is_none());
        assert_eq!(
            r.probe(MAX_UNIT + 1).unwrap_err(),
            RegistryError::InvalidUnit {
                unit: MAX_UNIT + 1,
                max: MAX_UNIT
            }
        );
    }

    #[test]
    fn named_arrays_pick_units_from_512_up() {
        let mut r = Reg::new();
        let mut hs = Vec::new();
        for (i, name) in ["md_a", "md_b", "md_c"].iter().enumerate() {
            let h = r.alloc_named(name).unwrap();
            assert_eq!(h.unit(), 512 + i as u32);
            let info = r.info_of(&h).unwrap();
            assert_eq!(info.name.unwrap().as_str(), *name);
            assert_eq!(info.disk_name().as_str(), *name);
            assert_eq!(info.hold, Hold::UntilStop);
            assert_eq!(info.state, ArrayState::Clear);
            hs.push(h);
        }
        // A named array survives its last put: held until stop.
        for h in hs {
            assert_eq!(r.put(h).unwrap(), None);
        }
        assert_eq!(r.find_name("md_b"), Some(513));
        assert_eq!(r.find_name("md513"), None, "a named array has no mdN name");
        assert_eq!(r.find_name("md_zz"), None);
        let h = r.lookup_name("md_c").unwrap();
        assert_eq!(h.unit(), 514);
        assert_eq!(r.info(514).unwrap().holders, 1);
        let _ = r.put(h).unwrap();
        assert_eq!(
            r.lookup_name("md_zz").unwrap_err().errno(),
            2,
            "ENOENT for unknown names"
        );
        // Probe-created arrays are found by their mdN name.
        let p = r.probe(12).unwrap();
        let q = r.lookup_name("md12").unwrap();
        assert_eq!(p, q);
        assert_eq!(r.find_name("md012"), Some(12));
        let _ = r.put(p).unwrap();
        let _ = r.put(q).unwrap();
        let units: Vec<u32> = r.iter().map(|i| i.unit).collect();
        assert_eq!(units, [12, 512, 513, 514]);
    }

    #[test]
    fn named_cursor_rotates_and_skips_taken_units() {
        let mut r = Reg::new();
        let a = r.alloc_unit(513).unwrap();
        let b = r.alloc_named("md_b").unwrap();
        let c = r.alloc_named("md_c").unwrap();
        assert_eq!((b.unit(), c.unit()), (512, 514));
        // Removing 512 does not rewind md's cursor: the next name gets 515.
        r.stop(&b).unwrap();
        assert!(r.put(b).unwrap().is_some());
        let d = r.alloc_named("md_d").unwrap();
        assert_eq!(d.unit(), 515);
        for h in [a, c, d] {
            let _ = r.put(h).unwrap();
        }

        // At the top of the unit space the cursor wraps to 0.
        let mut r = Reg::new();
        r.next_unit = MAX_UNIT;
        let top = r.alloc_named("md_top").unwrap();
        assert_eq!(top.unit(), MAX_UNIT);
        let low = r.alloc_named("md_low").unwrap();
        assert_eq!(low.unit(), 0);
        let _ = r.put(top).unwrap();
        let _ = r.put(low).unwrap();
    }

    #[test]
    fn freed_units_are_reused_after_the_cursor_wraps() {
        let mut r = Reg::with_max_unit(1).unwrap();
        assert_eq!(r.max_unit(), 1);
        let a = r.alloc_named("md_a").unwrap();
        let b = r.alloc_named("md_b").unwrap();
        assert_eq!((a.unit(), b.unit()), (0, 1));
        assert_eq!(
            r.alloc_named("md_c").unwrap_err(),
            RegistryError::NoFreeUnit
        );
        r.stop(&a).unwrap();
        assert_eq!(r.put(a).unwrap(), Some(Arr::default()));
        let c = r.alloc_named("md_c").unwrap();
        assert_eq!(c.unit(), 0, "unit 0 is free again");
        assert_eq!(r.find_name("md_a"), None);
        assert_eq!(r.find_name("md_c"), Some(0));
        let _ = r.put(b).unwrap();
        let _ = r.put(c).unwrap();
        // The name of a removed array can be used again too.
        let mut r = Reg::new();
        let a = r.alloc_named("md_a").unwrap();
        let g1 = a.generation();
        r.stop(&a).unwrap();
        let _ = r.put(a).unwrap();
        let a = r.alloc_named("md_a").unwrap();
        assert_ne!(a.generation(), g1);
        let _ = r.put(a).unwrap();
    }

    #[test]
    fn running_out_of_units_is_an_error_not_a_panic() {
        let mut r = Reg::with_max_unit(515).unwrap();
        let mut units = Vec::new();
        for i in 0..516 {
            let name = alloc::format!("md_{i}");
            let h = r.alloc_named(&name).unwrap();
            units.push(h.unit());
            let _ = r.put(h).unwrap();
        }
        // 512..=515 first, then the cursor wraps to 0..=511.
        assert_eq!(units[..4], [512, 513, 514, 515]);
        assert_eq!(units[4], 0);
        assert_eq!(units[515], 511);
        let e = r.alloc_named("md_more").unwrap_err();
        assert_eq!(e, RegistryError::NoFreeUnit);
        assert_eq!(e.errno(), 19, "md answers ENODEV when no unit is free");
        assert_eq!(
            r.new_array("md_more").unwrap_err(),
            RegistryError::NoFreeUnit
        );
        assert_eq!(r.alloc_unit(516).unwrap_err().errno(), 22);
        assert_eq!(r.probe(516).unwrap_err().errno(), 22);
        assert_eq!(r.len(), 516);
        assert!(Reg::with_max_unit(MAX_UNIT + 1).is_err());
        // A registry too small to reach 512 starts its cursor at 0.
        let mut r = Reg::with_max_unit(0).unwrap();
        let h = r.alloc_named("md_z").unwrap();
        assert_eq!(h.unit(), 0);
        assert_eq!(
            r.alloc_named("md_y").unwrap_err(),
            RegistryError::NoFreeUnit
        );
        let _ = r.put(h).unwrap();
    }

    #[test]
    fn duplicates_are_eexist() {
        let mut r = Reg::new();
        let a = r.alloc_named("md_home").unwrap();
        let e = r.alloc_named("md_home").unwrap_err();
        assert_eq!(
            e,
            RegistryError::NameExists {
                name: DiskName::from_str("md_home").unwrap()
            }
        );
        assert_eq!(e.errno(), 17);
        assert_eq!(e.to_string(), "an array named md_home already exists");
        let p = r.probe(4).unwrap();
        let e = r.alloc_unit(4).unwrap_err();
        assert_eq!(e, RegistryError::Exists { unit: 4 });
        assert_eq!(e.errno(), 17);
        assert_eq!(
            r.new_array("md4").unwrap_err(),
            RegistryError::Exists { unit: 4 }
        );
        assert_eq!(
            r.alloc_unit(512).unwrap_err(),
            RegistryError::Exists { unit: 512 }
        );
        // A deleted array still holds its unit and name until it goes.
        r.stop(&a).unwrap();
        assert_eq!(r.alloc_named("md_home").unwrap_err().errno(), 17);
        assert_eq!(r.alloc_unit(512).unwrap_err().errno(), 17);
        assert!(r.put(a).unwrap().is_some());
        let b = r.alloc_named("md_home").unwrap();
        assert_eq!(b.unit(), 513);
        let _ = r.put(b).unwrap();
        let _ = r.put(p).unwrap();
    }

    #[test]
    fn names_are_checked() {
        let mut r = Reg::new();
        assert_eq!(
            r.alloc_named("home").unwrap_err(),
            RegistryError::InvalidName
        );
        assert_eq!(
            r.alloc_named("md5").unwrap_err(),
            RegistryError::InvalidName
        );
        assert_eq!(r.alloc_named("").unwrap_err(), RegistryError::InvalidName);
        assert_eq!(
            r.alloc_named("md_a/b").unwrap_err(),
            RegistryError::InvalidName
        );
        assert_eq!(
            r.alloc_named("md_a b").unwrap_err(),
            RegistryError::InvalidName
        );
        assert_eq!(
            r.alloc_named("md_é").unwrap_err(),
            RegistryError::InvalidName
        );
        let long = "md_".to_string() + &"x".repeat(29);
        assert_eq!(long.len(), 32);
        let e = r.alloc_named(&long).unwrap_err();
        assert_eq!(e, RegistryError::NameTooLong { len: 32 });
        assert_eq!(e.errno(), 7);
        assert!(r.is_empty());
        let h = r.alloc_named(&long[..31]).unwrap();
        assert_eq!(r.info_of(&h).unwrap().disk_name().as_str(), &long[..31]);
        let _ = r.put(h).unwrap();
    }

    #[test]
    fn new_array_parses_like_md() {
        let mut r = Reg::new();
        assert_eq!(r.new_array("md_home\n").unwrap(), 512);
        let i = r.info(512).unwrap();
        assert_eq!((i.holders, i.hold), (0, Hold::UntilStop));
        assert_eq!(i.name.unwrap().as_str(), "md_home");
        assert_eq!(r.new_array("md7").unwrap(), 7);
        let i = r.info(7).unwrap();
        assert_eq!((i.holders, i.hold, i.name), (0, Hold::UntilIoctl, None));
        assert_eq!(r.new_array("md600").unwrap(), 600, "mdNNN may be >= 512");
        assert_eq!(
            r.new_array("md007").unwrap_err(),
            RegistryError::Exists { unit: 7 }
        );
        assert_eq!(r.new_array("md1048575").unwrap(), MAX_UNIT);
        for bad in [
            "md",
            "md1048576",
            "mdx",
            "md-1",
            "md+1",
            "home",
            "md 1",
            "md99999999999",
        ] {
            assert_eq!(
                r.new_array(bad).unwrap_err(),
                RegistryError::InvalidName,
                "{bad}"
            );
        }
        let e = r.new_array(&"md_".repeat(11)).unwrap_err();
        assert_eq!(e.errno(), 7);
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn remove_only_when_clear_memberless_and_unreferenced() {
        let mut r = Reg::new();
        let h = r.probe(2).unwrap();
        assert_eq!(r.remove(2).unwrap_err(), busy(2, BusyReason::Holders));
        r.add_member(&h).unwrap();
        assert_eq!(r.remove(2).unwrap_err(), busy(2, BusyReason::Members));
        r.configure(&h).unwrap();
        r.set_running(&h).unwrap();
        let e = r.remove(2).unwrap_err();
        assert_eq!(e, busy(2, BusyReason::Running));
        assert_eq!(e.errno(), 16);
        r.set_inactive(&h).unwrap();
        assert_eq!(r.remove(2).unwrap_err(), busy(2, BusyReason::Members));
        r.remove_member(&h).unwrap();
        assert_eq!(r.remove(2).unwrap_err(), busy(2, BusyReason::Configured));
        r.payload_mut(&h).unwrap().tag = 2;
        assert_eq!(r.put(h).unwrap(), None, "configured arrays stay");
        assert_eq!(r.remove(2).unwrap_err(), busy(2, BusyReason::Configured));
        assert_eq!(r.info(2).unwrap().state, ArrayState::Inactive);

        // Clear, memberless, unreferenced: removed even though still held.
        let _ = r.new_array("md_keep").unwrap();
        assert_eq!(r.remove(512).unwrap(), Arr::default());
        let h = r.probe(3).unwrap();
        let _ = r.put(h).unwrap();
        assert_eq!(r.info(3).unwrap().hold, Hold::UntilIoctl);
        assert_eq!(r.remove(3).unwrap(), Arr::default());
        assert_eq!(r.remove(3).unwrap_err(), RegistryError::NotFound);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn last_put_follows_mddev_put() {
        let mut r = Reg::new();
        let h = r.alloc_unit(3).unwrap();
        r.note_ioctl(&h).unwrap();
        assert_eq!(r.add_member(&h).unwrap(), 1);
        assert_eq!(r.put(h).unwrap(), None, "members keep it");
        let h = r.get(3).unwrap();
        assert_eq!(r.remove_member(&h).unwrap(), 0);
        r.configure(&h).unwrap();
        assert_eq!(r.put(h).unwrap(), None, "configuration keeps it");
        let h = r.get(3).unwrap();
        r.payload_mut(&h).unwrap().tag = 3;
        r.stop(&h).unwrap();
        assert_eq!(r.put(h).unwrap(), Some(Arr { tag: 3 }));
        assert!(r.is_empty());

        // A named array goes only after a full stop, whatever its members did.
        let h = r.alloc_named("md_n").unwrap();
        r.note_ioctl(&h).unwrap();
        assert_eq!(
            r.info_of(&h).unwrap().hold,
            Hold::UntilStop,
            "ioctls keep UNTIL_STOP"
        );
        r.add_member(&h).unwrap();
        r.remove_member(&h).unwrap();
        assert_eq!(r.put(h).unwrap(), None);
        let h = r.lookup_name("md_n").unwrap();
        r.stop(&h).unwrap();
        assert!(r.put(h).unwrap().is_some());
        assert!(r.is_empty());
    }

    #[test]
    fn run_and_member_transitions() {
        let mut r = Reg::new();
        let h = r.probe(0).unwrap();
        let e = r.set_running(&h).unwrap_err();
        assert_eq!(e, RegistryError::NoMembers { unit: 0 });
        assert_eq!(e.errno(), 22);
        assert_eq!(
            r.remove_member(&h).unwrap_err(),
            RegistryError::NoMembers { unit: 0 }
        );
        assert_eq!(r.add_member(&h).unwrap(), 1);
        assert_eq!(r.add_member(&h).unwrap(), 2);
        r.set_running(&h).unwrap();
        assert_eq!(r.info(0).unwrap().state, ArrayState::Active);
        assert_eq!(r.set_running(&h).unwrap_err(), busy(0, BusyReason::Running));
        assert_eq!(r.configure(&h).unwrap_err(), busy(0, BusyReason::Running));
        assert_eq!(r.remove_member(&h).unwrap(), 1);
        assert_eq!(
            r.remove_member(&h).unwrap_err(),
            busy(0, BusyReason::Running)
        );
        assert_eq!(
            r.info(0).unwrap().members,
            1,
            "a running array keeps a member"
        );
        r.set_inactive(&h).unwrap();
        assert_eq!(r.info(0).unwrap().state, ArrayState::Inactive);
        r.set_inactive(&h).unwrap();
        r.set_running(&h).unwrap();
        // A clear array stays clear when "stopped to inactive".
        let c = r.probe(1).unwrap();
        r.set_inactive(&c).unwrap();
        assert_eq!(r.info(1).unwrap().state, ArrayState::Clear);
        r.configure(&c).unwrap();
        r.configure(&c).unwrap();
        assert_eq!(r.info(1).unwrap().state, ArrayState::Inactive);
        let _ = r.put(c).unwrap();
        let _ = r.put(h).unwrap();
    }

    #[test]
    fn stop_deletes_and_deleted_array_refuses_new_holders() {
        let mut r = Reg::new();
        let h = r.probe(6).unwrap();
        r.note_ioctl(&h).unwrap();
        r.add_member(&h).unwrap();
        r.configure(&h).unwrap();
        r.set_running(&h).unwrap();
        let other = r.get(6).unwrap();
        // md refuses to stop a running array others have open.
        let e = r.stop(&h).unwrap_err();
        assert_eq!(e, busy(6, BusyReason::Holders));
        let _ = r.put(other).unwrap();
        r.stop(&h).unwrap();
        let i = r.info(6).unwrap();
        assert_eq!(
            (i.state, i.members, i.hold, i.deleted, i.holders),
            (ArrayState::Clear, 0, Hold::None, true, 1)
        );
        let deleted = RegistryError::Deleted { unit: 6 };
        assert_eq!(deleted.errno(), 19);
        assert_eq!(r.get(6).unwrap_err(), deleted);
        assert_eq!(r.probe(6).unwrap_err(), deleted);
        assert_eq!(r.lookup_name("md6").unwrap_err(), deleted);
        assert_eq!(r.dup(&h).unwrap_err(), deleted);
        assert_eq!(r.configure(&h).unwrap_err(), deleted);
        assert_eq!(r.set_running(&h).unwrap_err(), deleted);
        assert_eq!(r.set_inactive(&h).unwrap_err(), deleted);
        assert_eq!(r.stop(&h).unwrap_err(), deleted);
        assert_eq!(r.note_ioctl(&h).unwrap_err(), deleted);
        assert_eq!(r.add_member(&h).unwrap_err(), deleted);
        assert_eq!(r.remove_member(&h).unwrap_err(), deleted);
        assert_eq!(r.info(6).unwrap().holders, 1, "refused gets took nothing");
        // The remaining holder still reaches its payload.
        r.payload_mut(&h).unwrap().tag = 6;
        let old = h.generation();
        assert_eq!(r.put(h).unwrap(), Some(Arr { tag: 6 }));
        // The unit can be opened again: a fresh array.
        let n = r.probe(6).unwrap();
        assert_ne!(n.generation(), old);
        let i = r.info_of(&n).unwrap();
        assert!(!i.deleted);
        assert_eq!(r.payload(&n).unwrap(), &Arr::default());
        let _ = r.put(n).unwrap();
    }

    #[test]
    fn stopping_an_inactive_array_with_other_holders_waits_for_them() {
        let mut r = Reg::new();
        let a = r.probe(8).unwrap();
        let b = r.get(8).unwrap();
        r.add_member(&a).unwrap();
        r.stop(&a).unwrap();
        assert_eq!(r.put(a).unwrap(), None, "b still holds it");
        assert!(r.info(8).unwrap().deleted);
        assert_eq!(r.get(8).unwrap_err(), RegistryError::Deleted { unit: 8 });
        assert_eq!(r.remove(8).unwrap_err(), busy(8, BusyReason::Holders));
        assert!(r.put(b).unwrap().is_some());
        assert!(r.is_empty());
    }

    #[test]
    fn stale_handles_are_refused() {
        // Generations are unique across re-creation of a unit.
        let mut r = Reg::new();
        let h = r.probe(0).unwrap();
        let g1 = h.generation();
        r.note_ioctl(&h).unwrap();
        assert!(r.put(h).unwrap().is_some());
        let h = r.probe(0).unwrap();
        assert_ne!(h.generation(), g1);

        // A handle whose array is gone (here: one issued elsewhere) must not touch the new one.
        let mut other = Reg::new();
        let foreign = other.probe(0).unwrap();
        assert_eq!(foreign.generation(), g1);
        let stale = RegistryError::StaleHandle { unit: 0 };
        assert_eq!(stale.errno(), 116);
        assert_eq!(r.info_of(&foreign).unwrap_err(), stale);
        assert_eq!(r.payload(&foreign).unwrap_err(), stale);
        assert_eq!(r.payload_mut(&foreign).unwrap_err(), stale);
        assert_eq!(r.dup(&foreign).unwrap_err(), stale);
        assert_eq!(r.configure(&foreign).unwrap_err(), stale);
        assert_eq!(r.set_running(&foreign).unwrap_err(), stale);
        assert_eq!(r.set_inactive(&foreign).unwrap_err(), stale);
        assert_eq!(r.stop(&foreign).unwrap_err(), stale);
        assert_eq!(r.note_ioctl(&foreign).unwrap_err(), stale);
        assert_eq!(r.add_member(&foreign).unwrap_err(), stale);
        assert_eq!(r.remove_member(&foreign).unwrap_err(), stale);
        assert_eq!(r.put(foreign).unwrap_err(), stale);
        let i = r.info(0).unwrap();
        assert_eq!((i.holders, i.members, i.state), (1, 0, ArrayState::Clear));
        // A handle for a unit with no array at all.
        let ghost = other.probe(9).unwrap();
        assert_eq!(
            r.put(ghost).unwrap_err(),
            RegistryError::StaleHandle { unit: 9 }
        );
        let _ = r.put(h).unwrap();
    }

    #[test]
    fn counter_overflow_is_an_error() {
        let mut r = Reg::new();
        let h = r.probe(0).unwrap();
        r.arrays.get_mut(&0).unwrap().holders = u32::MAX;
        let e = r.get(0).unwrap_err();
        assert_eq!(e, RegistryError::CounterOverflow { unit: 0 });
        assert_eq!(e.errno(), 75);
        assert_eq!(r.dup(&h).unwrap_err(), e);
        assert_eq!(r.probe(0).unwrap_err(), e);
        r.arrays.get_mut(&0).unwrap().members = u32::MAX;
        assert_eq!(r.add_member(&h).unwrap_err(), e);
        r.arrays.get_mut(&0).unwrap().holders = 1;
        r.next_generation = u64::MAX;
        assert_eq!(
            r.probe(1).unwrap_err(),
            RegistryError::CounterOverflow { unit: 1 }
        );
        assert!(r.info(1).is_none());
        let _ = r.put(h).unwrap();
    }

    #[test]
    fn disk_names() {
        assert_eq!(DiskName::for_unit(0).as_str(), "md0");
        assert_eq!(DiskName::for_unit(MAX_UNIT).as_str(), "md1048575");
        assert_eq!(DiskName::for_unit(u32::MAX).as_str(), "md4294967295");
        assert_eq!(alloc::format!("{:?}", DiskName::for_unit(7)), "\"md7\"");
        assert!(DiskName::from_str(&"x".repeat(32)).is_none());
        assert_eq!(
            DiskName::from_str(&"x".repeat(31)).unwrap().as_str().len(),
            31
        );
    }

    #[test]
    fn errnos() {
        let all = [
            (RegistryError::Exists { unit: 0 }, 17),
            (
                RegistryError::NameExists {
                    name: DiskName::for_unit(0),
                },
                17,
            ),
            (RegistryError::NotFound, 2),
            (RegistryError::NoDevice { unit: 0 }, 6),
            (RegistryError::Deleted { unit: 0 }, 19),
            (RegistryError::NoFreeUnit, 19),
            (busy(0, BusyReason::Holders), 16),
            (RegistryError::StaleHandle { unit: 0 }, 116),
            (RegistryError::InvalidUnit { unit: 0, max: 0 }, 22),
            (RegistryError::InvalidName, 22),
            (RegistryError::NameTooLong { len: 40 }, 7),
            (RegistryError::NoMembers { unit: 0 }, 22),
            (RegistryError::CounterOverflow { unit: 0 }, 75),
        ];
        for (e, errno) in all {
            assert_eq!(e.errno(), errno, "{e}");
        }
        assert_eq!(
            busy(3, BusyReason::Running).to_string(),
            "md3 is busy: it is running"
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn shared_holders_put_on_drop() {
        let s = SharedRegistry::<Arr>::default();
        let h = s.probe(0).unwrap();
        assert_eq!(h.unit(), 0);
        h.note_ioctl().unwrap();
        let h2 = h.dup().unwrap();
        assert_eq!(h.info().unwrap().holders, 2);
        h2.with_payload(|p| p.tag = 1).unwrap();
        drop(h2);
        assert_eq!(s.info(0).unwrap().holders, 1);
        assert_eq!(h.release().unwrap(), Some(Arr { tag: 1 }));
        assert!(s.snapshot().is_empty());

        let n = s.alloc_named("md_s").unwrap();
        assert_eq!(n.unit(), 512);
        n.add_member().unwrap();
        n.configure().unwrap();
        n.set_running().unwrap();
        let m = s.lookup_name("md_s").unwrap();
        assert_eq!(n.stop().unwrap_err(), busy(512, BusyReason::Holders));
        drop(m);
        n.set_inactive().unwrap();
        n.remove_member().unwrap();
        n.stop().unwrap();
        assert_eq!(
            s.get(512).unwrap_err(),
            RegistryError::Deleted { unit: 512 }
        );
        drop(n);
        assert!(s.lock().is_empty());
        assert_eq!(s.new_array("md9").unwrap(), 9);
        let u = s.alloc_unit(10).unwrap();
        assert_eq!(s.remove(9).unwrap(), Arr::default());
        assert_eq!(u.generation(), s.info(10).unwrap().generation);
    }
}
