//! php-fpm pool sizing: how many PHP processes fit in a node's memory.
//!
//! ```text
//! web:    max_children = min((memory - reserve) * 80 % / 100 MiB, 10 per vCPU)   (at least 4)
//!         reserve      = 512 MiB OS and agents + 256 MiB Apache + 256 MiB OPcache shared memory
//! stable: max_children = 4 (not an ALB target: admin pages over an SSM port forward only); the
//!         memory is cron's
//! ```
//!
//! More PHP processes than the CPUs can run only queue in the run queue instead of php-fpm's
//! backlog (and time out at the ALB): 10 per vCPU leaves room for requests waiting on the
//! database, Redis or EFS.
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
/// At most this many PHP processes per vCPU.
pub const PER_VCPU: i64 = 10;
/// The stable node's pool: it serves no users (it is not an ALB target), only an administrator
/// over an SSM port forward; its memory goes to cron.
pub const STABLE_CHILDREN: i64 = 4;

/// The pool's process numbers for one memory size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolSize {
    pub memory_mib: i64,
    pub vcpus: i64,
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

/// The pool of a node with `memory_mib` of memory and `vcpus` vCPUs.
pub fn size_for(memory_mib: i64, vcpus: i64, role: Role) -> PoolSize {
    let reserve = reserve_mib(role);
    let max_children = match role {
        Role::Web => by_memory(memory_mib, reserve)
            .min(vcpus * PER_VCPU)
            .max(MIN_CHILDREN),
        Role::Stable => STABLE_CHILDREN,
    };
    let min_spare = (max_children / 8).clamp(2, 32).min(max_children);
    let max_spare = (max_children / 4).max(min_spare);
    PoolSize {
        memory_mib,
        vcpus,
        reserve_mib: reserve,
        max_children,
        start_servers: min_spare,
        min_spare_servers: min_spare,
        max_spare_servers: max_spare,
    }
}

fn by_memory(memory_mib: i64, reserve: i64) -> i64 {
    (memory_mib - reserve) * MARGIN_PCT / 100 / AVG_PROCESS_MIB
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
    Ok(size_for(t.memory_mib as i64, t.vcpus as i64, role))
}

/// One line of the rendered arithmetic:
/// `m6i.large  8192 MiB  2 vCPU: min(57, 20) = 20; spare 2..5, start 2` (memory, vCPU bound).
pub fn explain(label: &str, p: &PoolSize) -> String {
    let spare = format!(
        "spare {}..{}, start {}",
        p.min_spare_servers, p.max_spare_servers, p.start_servers
    );
    if p.reserve_mib == reserve_mib(Role::Stable) {
        return format!("{label}: {} (cron has the memory); {spare}", p.max_children);
    }
    let mem = by_memory(p.memory_mib, p.reserve_mib);
    let cpu = p.vcpus * PER_VCPU;
    let floor = if mem.min(cpu) < MIN_CHILDREN {
        format!(" -> raised to the minimum of {MIN_CHILDREN} (too little memory for Moodle)")
    } else {
        String::new()
    };
    format!(
        "{label}: min({mem}, {cpu}) = {}{floor}; {spare}",
        mem.min(cpu)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_pool_for_several_types() {
        // 8 GiB, 2 vCPU: min((8192 - 1024) * 0.8 / 100 = 57, 2 * 10 = 20) = 20
        let m = size_for_type("m6i.large", Role::Web).unwrap();
        assert_eq!(m.max_children, 20);
        assert_eq!(
            (m.min_spare_servers, m.max_spare_servers, m.start_servers),
            (2, 5, 2)
        );
        // 8 GiB, 4 vCPU: min(57, 40) = 40
        assert_eq!(
            size_for_type("c6i.xlarge", Role::Web).unwrap().max_children,
            40
        );
        // 16 GiB, 4 vCPU: min(122, 40) = 40
        assert_eq!(
            size_for_type("m6i.xlarge", Role::Web).unwrap().max_children,
            40
        );
        // 4 GiB, 2 vCPU: min((4096 - 1024) * 0.8 / 100 = 24, 20) = 20
        assert_eq!(
            size_for_type("c6i.large", Role::Web).unwrap().max_children,
            20
        );
        // 2 GiB, 2 vCPU: min((2048 - 1024) * 0.8 / 100 = 8, 20) = 8: memory bound.
        assert_eq!(
            size_for_type("t3.small", Role::Web).unwrap().max_children,
            8
        );
        // 32 GiB, 8 vCPU: min(253, 80) = 80
        let big = size_for_type("m5.2xlarge", Role::Web).unwrap();
        assert_eq!(big.max_children, 80);
        assert_eq!((big.min_spare_servers, big.max_spare_servers), (10, 20));
        assert!(explain("m5.2xlarge", &big).contains("min(253, 80) = 80; spare 10..20, start 10"));
    }

    #[test]
    fn stable_pool_is_small_and_leaves_the_memory_to_cron() {
        for t in ["m6i.large", "t3.medium", "m5.2xlarge"] {
            let p = size_for_type(t, Role::Stable).unwrap();
            assert_eq!(p.max_children, STABLE_CHILDREN, "{t}");
            assert!(explain(t, &p).contains("cron has the memory"));
        }
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
            for vcpus in [1, 2, 4, 8, 16, 64] {
                for role in [Role::Web, Role::Stable] {
                    let p = size_for(mem, vcpus, role);
                    assert!(p.min_spare_servers >= 1, "{p:?}");
                    assert!(p.min_spare_servers <= p.start_servers, "{p:?}");
                    assert!(p.start_servers <= p.max_spare_servers, "{p:?}");
                    assert!(p.max_spare_servers <= p.max_children, "{p:?}");
                }
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
