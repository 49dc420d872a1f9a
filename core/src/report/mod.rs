//! Text reports in mdadm's layouts (`--examine`, `--detail`, `--examine-bitmap`).
//!
//! Each report is first a [`Report`]: a list of [`Line`]s, most of them `key : value` fields, so
//! that the same facts render as mdadm's exact text ([`Report::to_text`]) or as data
//! ([`Report::fields`], [`Report::rows`]).

pub mod bitmap;
pub mod brief;
pub mod detail;
pub mod examine;
pub mod fields;
pub mod units;

pub use detail::{detail_array, DetailInfo};
pub use examine::{examine_sb0, examine_sb1, ExamineOpts};
pub use fields::{Line, Report};
