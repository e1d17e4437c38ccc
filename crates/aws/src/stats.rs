//! Request accounting: an SDK interceptor, installed on every service client, that counts each
//! HTTP request moodlestack sends (every attempt, so retries count) by service and operation.
//! `--stats` prints the counts; the benchmark reads them.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Requests sent, by (service, operation). Cheap to clone: clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct RequestStats {
    counts: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

/// One row of [`RequestStats::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestCount {
    pub service: String,
    pub operation: String,
    pub count: u64,
    /// False for reads (`Describe*`, `List*`, `Get*`), true for everything else.
    pub mutating: bool,
}

/// True unless the operation only reads (`Describe*`, `List*`, `Get*`). STS's
/// `GetCallerIdentity` is a read too.
pub fn is_mutating(operation: &str) -> bool {
    !["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}

impl RequestStats {
    pub fn new() -> Self {
        Self::default()
    }
    fn record(&self, service: &str, operation: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((service.to_string(), operation.to_string()))
            .or_default() += 1;
    }
    /// Every (service, operation) seen so far, sorted.
    pub fn snapshot(&self) -> Vec<RequestCount> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((service, operation), count)| RequestCount {
                service: service.clone(),
                operation: operation.clone(),
                count: *count,
                mutating: is_mutating(operation),
            })
            .collect()
    }
    /// Total requests sent.
    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|r| r.count).sum()
    }
    /// Mutating requests sent.
    pub fn mutating(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|r| r.mutating)
            .map(|r| r.count)
            .sum()
    }
    /// Forgets every count (between phases of a benchmark).
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Intercept for RequestStats {
    fn name(&self) -> &'static str {
        "moodlestack::RequestStats"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(m) => self.record(m.service(), m.name()),
            None => self.record("unknown", "unknown"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert!(!is_mutating("DescribeVpcs"));
        assert!(!is_mutating("ListTagsForResource"));
        assert!(!is_mutating("GetParameter"));
        assert!(is_mutating("CreateVpc"));
        assert!(is_mutating("PutParameter"));
        let s = RequestStats::new();
        s.record("EC2", "DescribeVpcs");
        s.record("EC2", "DescribeVpcs");
        s.record("EC2", "CreateVpc");
        assert_eq!(s.total(), 3);
        assert_eq!(s.mutating(), 1);
        assert_eq!(s.snapshot()[1].count, 2);
        s.reset();
        assert_eq!(s.total(), 0);
    }
}
