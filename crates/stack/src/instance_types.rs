//! The one table of EC2 instance types moodlestack knows: memory (for sizing the php-fpm pool),
//! vCPUs and CPU architecture (checked against the AMI's). Every type the stacks in `stacks/` use
//! must be here; validation names an unknown type and suggests the closest known one.

/// CPU architecture, spelled as EC2 spells an AMI's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    /// `x86_64` or `arm64`, as in `DescribeImages`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about one instance type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceType {
    pub name: &'static str,
    pub vcpus: u32,
    /// Memory in MiB, as EC2 reports it.
    pub memory_mib: u32,
    pub arch: Arch,
}

impl InstanceType {
    /// The family: `m6i` of `m6i.large`.
    pub fn family(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }
    /// The family class letter(s): `m` of `m6i`, `c` of `c7g`, `t` of `t3a`.
    pub fn class(&self) -> &'static str {
        let fam = self.family();
        let end = fam.find(|c: char| c.is_ascii_digit()).unwrap_or(fam.len());
        &fam[..end]
    }
}

const fn t(name: &'static str, vcpus: u32, gib_x4: u32, arch: Arch) -> InstanceType {
    // Memory is given in quarter GiB so 0.5 GiB types fit an integer table.
    InstanceType {
        name,
        vcpus,
        memory_mib: gib_x4 * 256,
        arch,
    }
}

use Arch::{Arm64 as A, X86_64 as X};

/// Every known type. Memory in quarter GiB (`8` = 2 GiB).
pub static INSTANCE_TYPES: &[InstanceType] = &[
    // Burstable
    t("t3.micro", 2, 4, X),
    t("t3.small", 2, 8, X),
    t("t3.medium", 2, 16, X),
    t("t3.large", 2, 32, X),
    t("t3.xlarge", 4, 64, X),
    t("t3.2xlarge", 8, 128, X),
    t("t3a.medium", 2, 16, X),
    t("t3a.large", 2, 32, X),
    t("t3a.xlarge", 4, 64, X),
    t("t4g.micro", 2, 4, A),
    t("t4g.small", 2, 8, A),
    t("t4g.medium", 2, 16, A),
    t("t4g.large", 2, 32, A),
    t("t4g.xlarge", 4, 64, A),
    // General purpose
    t("m5.large", 2, 32, X),
    t("m5.xlarge", 4, 64, X),
    t("m5.2xlarge", 8, 128, X),
    t("m5a.large", 2, 32, X),
    t("m5a.xlarge", 4, 64, X),
    t("m6i.large", 2, 32, X),
    t("m6i.xlarge", 4, 64, X),
    t("m6i.2xlarge", 8, 128, X),
    t("m6a.large", 2, 32, X),
    t("m6a.xlarge", 4, 64, X),
    t("m7i.large", 2, 32, X),
    t("m7i.xlarge", 4, 64, X),
    t("m7a.large", 2, 32, X),
    t("m7a.xlarge", 4, 64, X),
    t("m6g.large", 2, 32, A),
    t("m6g.xlarge", 4, 64, A),
    t("m7g.large", 2, 32, A),
    t("m7g.xlarge", 4, 64, A),
    t("m7g.2xlarge", 8, 128, A),
    // Compute optimized
    t("c5.large", 2, 16, X),
    t("c5.xlarge", 4, 32, X),
    t("c5.2xlarge", 8, 64, X),
    t("c6i.large", 2, 16, X),
    t("c6i.xlarge", 4, 32, X),
    t("c6i.2xlarge", 8, 64, X),
    t("c6a.large", 2, 16, X),
    t("c6a.xlarge", 4, 32, X),
    t("c7i.large", 2, 16, X),
    t("c7i.xlarge", 4, 32, X),
    t("c6g.large", 2, 16, A),
    t("c6g.xlarge", 4, 32, A),
    t("c7g.large", 2, 16, A),
    t("c7g.xlarge", 4, 32, A),
    t("c7g.2xlarge", 8, 64, A),
    // Memory optimized
    t("r5.large", 2, 64, X),
    t("r5.xlarge", 4, 128, X),
    t("r6i.large", 2, 64, X),
    t("r6i.xlarge", 4, 128, X),
    t("r7i.large", 2, 64, X),
    t("r6g.large", 2, 64, A),
    t("r7g.large", 2, 64, A),
    t("r7g.xlarge", 4, 128, A),
];

/// The type named `name`, if known.
pub fn lookup(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_memory_and_arch() {
        let m = lookup("m6i.large").unwrap();
        assert_eq!(m.memory_mib, 8192);
        assert_eq!(m.arch, Arch::X86_64);
        assert_eq!(m.class(), "m");
        assert_eq!(lookup("t3.micro").unwrap().memory_mib, 1024);
        assert_eq!(lookup("c7g.large").unwrap().arch, Arch::Arm64);
        assert_eq!(lookup("c7g.large").unwrap().family(), "c7g");
        assert!(lookup("m6i.huge").is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = INSTANCE_TYPES.iter().map(|t| t.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
