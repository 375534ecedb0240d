//! Placeholder; filled in with Task 2.
