//! glibc allocator tuning for a long-running, mostly idle process.
//!
//! glibc gives every thread that allocates its own arena (up to 8 per core). The manager's work
//! comes in bursts — a cycle every 30 s, a scrape now and then — on whichever tokio worker runs
//! it, so each worker's arena grows to the burst's peak and keeps it: at 1,000 variants two
//! worker arenas held 7–8 MiB between cycles, a quarter of the process's RSS. With one arena the
//! bursts reuse the same free memory. Measured at 1,000 variants (docs/performance.md): RSS
//! median 30.0 → 26.8 MiB; the price is ~40 ms more CPU per 5-s cycle (under 1 % of one core).
//!
//! An operator's own setting wins: with `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` in
//! `GLIBC_TUNABLES` in the environment, nothing is changed.

/// Arenas the manager asks glibc for.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 1;

/// Whether the environment already sets glibc's arena limit (then the operator's value stands).
fn operator_sets_arena_max(malloc_arena_max: Option<&str>, glibc_tunables: Option<&str>) -> bool {
    malloc_arena_max.is_some()
        || glibc_tunables.is_some_and(|t| {
            t.split(':')
                .any(|item| item.trim_start().starts_with("glibc.malloc.arena_max="))
        })
}

/// Limits glibc malloc to one arena unless the environment sets the limit. Call first thing in
/// `main`, before any other thread starts. A no-op on other C libraries.
pub fn limit_arenas() {
    let env = |key: &str| std::env::var(key).ok();
    if operator_sets_arena_max(
        env("MALLOC_ARENA_MAX").as_deref(),
        env("GLIBC_TUNABLES").as_deref(),
    ) {
        return;
    }
    set_arena_max();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max() {
    // SAFETY: `mallopt` only updates glibc's allocator parameters; it takes no pointers and is
    // called once, from `main`, before the runtime's threads exist. A zero return (parameter
    // refused) leaves glibc's defaults in place, which is harmless.
    let _accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_setting_wins_in_either_spelling() {
        assert!(!operator_sets_arena_max(None, None));
        assert!(operator_sets_arena_max(Some("4"), None));
        assert!(operator_sets_arena_max(
            None,
            Some("glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=2")
        ));
        assert!(!operator_sets_arena_max(
            None,
            Some("glibc.malloc.trim_threshold=131072")
        ));
        assert!(!operator_sets_arena_max(
            None,
            Some("glibc.malloc.arena_test=2")
        ));
    }
}
