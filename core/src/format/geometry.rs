//! mdadm's layout rules for new members: where the superblock, bitmap, bad-block log and data go,
//! for every metadata version and any device size.
// TODO(helper)
