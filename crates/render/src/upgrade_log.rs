//! What the stable node's install/upgrade log ([`crate::INSTALL_UPGRADE_LOG`], shipped to the
//! stack's `install-upgrade` log group) says about an upgrade's outcome. The lines are written by
//! `templates/files/moodle-install-upgrade.sh.hbs` and `moodle-smoke-test.sh.hbs`; `apply`
//! follows them after a code change and stops at the first final one. The markers live here,
//! beside the templates that print them: a test renders the stable node's files and finds every
//! one of them, and the real-Moodle test classifies what the real scripts wrote.

/// What one line of the log means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeLine {
    /// A step (`database: pending`, `maintenance mode on for the upgrade`, a smoke check): the
    /// upgrade goes on.
    Step,
    /// This attempt failed: the site stays in maintenance mode and systemd retries the script a
    /// minute later (Moodle resumes from its last savepoint). Not final.
    AttemptFailed,
    /// Final: the database matches the code and the smoke test passed.
    Passed,
    /// Final: the database matches the code; the smoke test was skipped because maintenance mode
    /// set by an operator is on (moodlestack leaves it on).
    SkippedInMaintenance,
    /// Final: the database matches the code, the smoke test failed (not retried).
    SmokeFailed,
    /// Final: a state the script does not retry (exit 3): a person must look.
    Stopped,
}

/// Each marker (the start of a line) and its meaning; every other line is a [`UpgradeLine::Step`].
pub const MARKERS: &[(&str, UpgradeLine)] = &[
    ("moodle-smoke-test: passed", UpgradeLine::Passed),
    ("moodle-smoke-test: FAILED", UpgradeLine::SmokeFailed),
    (
        "moodle-smoke-test: skipped: the site is in maintenance mode",
        UpgradeLine::SkippedInMaintenance,
    ),
    (
        "moodle-install-upgrade: UPGRADE FAILED",
        UpgradeLine::AttemptFailed,
    ),
    (
        "moodle-install-upgrade: interrupted install",
        UpgradeLine::Stopped,
    ),
    (
        "moodle-install-upgrade: the database is newer than the code",
        UpgradeLine::Stopped,
    ),
];

impl UpgradeLine {
    /// The meaning of one line of the log.
    pub fn of(line: &str) -> UpgradeLine {
        MARKERS
            .iter()
            .find(|(m, _)| line.trim_start().starts_with(m))
            .map_or(UpgradeLine::Step, |(_, k)| *k)
    }

    /// Whether the script is done (nothing more comes for this code version).
    pub fn is_final(self) -> bool {
        !matches!(self, UpgradeLine::Step | UpgradeLine::AttemptFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_by_their_start() {
        assert_eq!(
            UpgradeLine::of("moodle-smoke-test: passed (v4.5.5 php8.3)"),
            UpgradeLine::Passed
        );
        assert_eq!(
            UpgradeLine::of("moodle-smoke-test: FAILED (v4.5.5 php8.3)"),
            UpgradeLine::SmokeFailed
        );
        // A single check's failure is a step; the summary line after it is final.
        assert_eq!(
            UpgradeLine::of("moodle-smoke-test: login page: FAILED (500)"),
            UpgradeLine::Step
        );
        assert_eq!(
            UpgradeLine::of("moodle-install-upgrade: database: pending"),
            UpgradeLine::Step
        );
        assert!(!UpgradeLine::of(
            "moodle-install-upgrade: UPGRADE FAILED: the site stays in maintenance mode"
        )
        .is_final());
        assert!(
            UpgradeLine::of("moodle-install-upgrade: interrupted install: empty it").is_final()
        );
    }
}
