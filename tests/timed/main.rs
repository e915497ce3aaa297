//! Tests whose assertion is a time (how long root's datagrams wait while
//! the daemon is attacked). They run in a binary of their own, one test at
//! a time, because cargo runs test binaries one after another: the rest of
//! the suite, hundreds of daemons in parallel, is then not part of what
//! they measure.

// The integration tests' harness (tests/it); these tests use part of it.
#[allow(dead_code)]
#[path = "../it/support/mod.rs"]
mod support;

mod grep_attack;
