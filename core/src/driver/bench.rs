//! End-to-end benchmarks behind `mdraid bench --json` (filled in below).
