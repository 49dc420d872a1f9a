//! Text reports in mdadm's layouts (`--examine`, `--detail`, `--examine-bitmap`).
// TODO
