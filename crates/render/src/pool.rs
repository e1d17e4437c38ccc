//! php-fpm pool sizing: how many PHP processes fit in a node's memory.
//!
//! ```text
//! max_children = (memory - reserve) * 80 % / 100 MiB      (at least 4)
//! reserve      = 512 MiB OS and agents + 256 MiB Apache + 256 MiB OPcache shared memory
//!                (+ 1024 MiB for cron's CLI processes on the stable node)
//! ```
//!
//! A Moodle request's PHP process averages about 100 MiB (resident, excluding the OPcache segment
//! that all processes share and that the reserve counts once); `memory_limit` (256M) caps a single
//! heavy request. The 80 % keeps a fifth of the remainder free for heavier-than-average requests
//! and the page cache, so the node never swaps or meets the OOM killer under load: past
//! `max_children`, php-fpm queues requests instead of spawning processes the node cannot hold.
//!
//! This is the only place the arithmetic lives: the web fleet mixes instance types, so its
//! user-data carries the numbers of every configured type and applies those of the type the node
//! launched as (read from the instance metadata).

use crate::{RenderError, Role};
use moodlestack_stack::instance_types;
use serde::Serialize;

/// Kernel, systemd, SSM agent, sshd, cloud-init, NFS client.
pub const OS_RESERVE_MIB: i64 = 512;
/// Apache (event MPM; static files and X-Sendfile streams).
pub const APACHE_RESERVE_MIB: i64 = 256;
/// The OPcache shared memory segment (`opcache.memory_consumption`), counted once.
pub const OPCACHE_MIB: i64 = 256;
/// Stable node only: Moodle cron's CLI processes (cron every minute with keep-alive overlaps up
/// to about 4 runners of up to 256 MiB).
pub const CRON_RESERVE_MIB: i64 = 1024;
/// Average resident size of one Moodle PHP-FPM process.
pub const AVG_PROCESS_MIB: i64 = 100;
/// Share of the remaining memory given to PHP processes.
pub const MARGIN_PCT: i64 = 80;
/// Never fewer processes than this (a type this small is too small for Moodle anyway).
pub const MIN_CHILDREN: i64 = 4;

/// The pool's process numbers for one memory size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolSize {
    pub memory_mib: i64,
    pub reserve_mib: i64,
    pub max_children: i64,
    pub start_servers: i64,
    pub min_spare_servers: i64,
    pub max_spare_servers: i64,
}

/// Memory kept out of the pool on a node of `role`.
pub fn reserve_mib(role: Role) -> i64 {
    let base = OS_RESERVE_MIB + APACHE_RESERVE_MIB + OPCACHE_MIB;
    match role {
        Role::Web => base,
        Role::Stable => base + CRON_RESERVE_MIB,
    }
}

/// The pool of a node with `memory_mib` of memory.
pub fn size_for_memory(memory_mib: i64, role: Role) -> PoolSize {
    let reserve = reserve_mib(role);
    let computed = (memory_mib - reserve) * MARGIN_PCT / 100 / AVG_PROCESS_MIB;
    let max_children = computed.max(MIN_CHILDREN);
    let min_spare = (max_children / 8).clamp(2, 32);
    let max_spare = (max_children / 4).max(min_spare);
    PoolSize {
        memory_mib,
        reserve_mib: reserve,
        max_children,
        start_servers: min_spare,
        min_spare_servers: min_spare,
        max_spare_servers: max_spare,
    }
}

/// The pool of a node of `instance_type`, from the instance type table.
pub fn size_for_type(instance_type: &str, role: Role) -> Result<PoolSize, RenderError> {
    let t = instance_types::lookup(instance_type).ok_or_else(|| RenderError::Input {
        message: format!(
            "instance type `{instance_type}` is not in moodlestack's instance type table, so its \
             php-fpm pool cannot be sized; use a listed type or add it (memory, vCPUs, arch) to \
             crates/stack/src/instance_types.rs"
        ),
    })?;
    Ok(size_for_memory(t.memory_mib as i64, role))
}

/// One line of the rendered arithmetic: `m6i.large  8192 MiB: (8192 - 1024) * 80% / 100 = 57`.
pub fn explain(label: &str, p: &PoolSize) -> String {
    let computed = (p.memory_mib - p.reserve_mib) * MARGIN_PCT / 100 / AVG_PROCESS_MIB;
    let floor = if computed < MIN_CHILDREN {
        format!(" -> raised to the minimum of {MIN_CHILDREN} (too little memory for Moodle)")
    } else {
        String::new()
    };
    format!(
        "{label}: ({} - {}) * {MARGIN_PCT}% / {AVG_PROCESS_MIB} = {computed}{floor}; \
         spare servers {}..{}, start {}",
        p.memory_mib, p.reserve_mib, p.min_spare_servers, p.max_spare_servers, p.start_servers
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_pool_for_several_types() {
        // 8 GiB: (8192 - 1024) * 0.8 / 100 = 57.3
        let m = size_for_type("m6i.large", Role::Web).unwrap();
        assert_eq!(m.max_children, 57);
        assert_eq!(
            (m.min_spare_servers, m.max_spare_servers, m.start_servers),
            (7, 14, 7)
        );
        // 16 GiB: (16384 - 1024) * 0.8 / 100 = 122.9
        assert_eq!(
            size_for_type("m6i.xlarge", Role::Web).unwrap().max_children,
            122
        );
        // 4 GiB: (4096 - 1024) * 0.8 / 100 = 24.6
        let c = size_for_type("c6i.large", Role::Web).unwrap();
        assert_eq!(c.max_children, 24);
        assert_eq!((c.min_spare_servers, c.max_spare_servers), (3, 6));
        // 2 GiB: (2048 - 1024) * 0.8 / 100 = 8.2
        assert_eq!(
            size_for_type("t3.small", Role::Web).unwrap().max_children,
            8
        );
        // 32 GiB: (32768 - 1024) * 0.8 / 100 = 253.9; spare servers capped at 32.
        let big = size_for_type("m5.2xlarge", Role::Web).unwrap();
        assert_eq!(big.max_children, 253);
        assert_eq!((big.min_spare_servers, big.max_spare_servers), (31, 63));
    }

    #[test]
    fn stable_keeps_memory_for_cron() {
        // (8192 - 2048) * 0.8 / 100 = 49.2
        assert_eq!(
            size_for_type("m6i.large", Role::Stable)
                .unwrap()
                .max_children,
            49
        );
        // (4096 - 2048) * 0.8 / 100 = 16.4
        assert_eq!(
            size_for_type("t3.medium", Role::Stable)
                .unwrap()
                .max_children,
            16
        );
    }

    #[test]
    fn tiny_types_get_the_floor_and_say_so() {
        let p = size_for_type("t3.micro", Role::Web).unwrap();
        assert_eq!(p.max_children, MIN_CHILDREN);
        assert!(p.min_spare_servers <= p.start_servers);
        assert!(p.start_servers <= p.max_spare_servers);
        assert!(p.max_spare_servers <= p.max_children);
        assert!(explain("t3.micro", &p).contains("raised to the minimum of 4"));
    }

    #[test]
    fn spare_servers_are_always_consistent() {
        for mem in (512..70_000).step_by(97) {
            for role in [Role::Web, Role::Stable] {
                let p = size_for_memory(mem, role);
                assert!(p.min_spare_servers >= 1, "{p:?}");
                assert!(p.min_spare_servers <= p.start_servers, "{p:?}");
                assert!(p.start_servers <= p.max_spare_servers, "{p:?}");
                assert!(p.max_spare_servers <= p.max_children, "{p:?}");
            }
        }
    }

    #[test]
    fn unknown_type_names_the_table() {
        let e = size_for_type("m9z.huge", Role::Web)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m9z.huge") && e.contains("instance_types.rs"),
            "{e}"
        );
    }
}
