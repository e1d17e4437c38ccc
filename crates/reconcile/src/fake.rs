//! An in-memory [`Cloud`] for tests of the diff and the executor.
//!
//! Resources live in a map keyed by physical id. Tagged kinds are found by their
//! `moodlestack:stack` tag (from the `tags` field, as given on create); kinds AWS cannot tag (those
//! with [`moodlestack_model::KindSpec::identity`] and no `tags` field), and untagged resources of
//! kinds with an identity, belong to a stack when one of their identity fields names a resource
//! of the stack, and are observed as `untagged:<physical id>`.
//!
//! Time is tokio time: tests run with `#[tokio::test(start_paused = true)]`, so a simulated
//! latency of 10 minutes costs nothing. Knobs:
//! - [`FakeCloud::set_latency`]: how long a kind stays pending after a create, update or delete;
//! - [`FakeCloud::crash_at`]: the k-th mutating call (create/update/delete) "crashes" the client,
//!   before or after the call takes effect; every call after that fails until [`FakeCloud::recover`];
//! - [`FakeCloud::fail_create`], [`FakeCloud::fail_ready`], [`FakeCloud::throttle`]: per-resource
//!   failures (an API error, a resource that ends `failed`, retryable throttling);
//! - [`FakeCloud::drift`]: change a field behind moodlestack's back;
//! - [`FakeCloud::add_network`]: a VPC and subnets made outside any stack (what
//!   [`Cloud::network`] answers; by default nothing exists);
//! - [`FakeCloud::log`]: every call with its tokio time, for ordering and concurrency assertions.

use async_trait::async_trait;
use moodlestack_model::{
    spec, Cloud, CloudError, DeleteOptions, DeletePolicy, Fields, ImageInfo, Kind, KindSpec,
    LeaseInfo, Lifecycle, NetworkInfo, Observed, ObservedId, PhysicalId, Readiness, Resource,
    ResourceId, Scope, SubnetInfo, Value, VpcInfo, Want, TAG_ID, TAG_STACK,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One call the fake received (inspection and knob methods are not logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Time since the fake was made (tokio time).
    pub at: Duration,
    pub op: Op,
    /// Logical id (for `untagged:` resources the id the executor passed on create).
    pub id: String,
    pub kind: Option<Kind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Observe,
    Create,
    Update,
    Delete,
    /// A poll that found the resource pending.
    PollPending,
    /// A poll that found the resource ready (for `Want::Ready`).
    PollReady,
    /// A poll that found the resource gone (for `Want::Gone`).
    PollGone,
    PollFailed,
    AcquireLease,
    ReleaseLease,
    BreakLease,
    /// [`Cloud::network`] (the id is the VPC asked for).
    Network,
}

/// When a simulated crash happens relative to the k-th mutating call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The call never reaches the cloud.
    BeforeCall,
    /// The call takes effect, but its answer is lost.
    AfterCall,
}

#[derive(Clone, Debug, PartialEq)]
enum Status {
    Creating(Instant),
    Updating(Instant),
    Deleting(Instant),
    Available,
    Failed(String),
}

#[derive(Clone, Debug)]
struct Res {
    /// Logical id as created (tags) or `untagged:<physical>`.
    id: ResourceId,
    kind: Kind,
    physical_id: String,
    fields: Fields,
    /// Attributes known at once (id, arn, name...).
    attrs: BTreeMap<String, String>,
    /// Attributes known once available (endpoints).
    ready_attrs: BTreeMap<String, String>,
    status: Status,
    /// Delete options the resource was deleted with.
    deleted_with: Option<DeleteOptions>,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<String, Res>,
    latency: HashMap<Kind, Duration>,
    /// Kinds whose creates and deletes are [`Cloud::settled`] when answered.
    settled: std::collections::HashSet<Kind>,
    counter: u64,
    mutating_calls: usize,
    crash: Option<(usize, CrashPoint)>,
    crashed: bool,
    fail_create: HashMap<String, String>,
    fail_ready: HashMap<String, String>,
    fail_update: HashMap<String, String>,
    ignored: Vec<(String, String)>,
    throttle: HashMap<String, usize>,
    log: Vec<Call>,
    leases: HashMap<String, LeaseInfo>,
    /// VPCs and subnets made outside any stack ([`FakeCloud::add_network`]).
    vpcs: Vec<VpcInfo>,
    subnets: Vec<SubnetInfo>,
    /// Resources with a mutating call in flight (not yet seen ready/gone by a poll), and the most
    /// at once.
    in_flight: usize,
    max_in_flight: usize,
    in_flight_ids: std::collections::BTreeSet<String>,
    deletes: Vec<(ResourceId, DeleteOptions)>,
    /// Kinds whose deleted resources [`Cloud::observe`] still lists, and for how many
    /// observations ([`FakeCloud::linger`]); the deleted resources it still lists, with how many
    /// observations are left.
    linger: HashMap<Kind, usize>,
    ghosts: Vec<(Res, usize)>,
}

/// The in-memory cloud. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeCloud {
    state: Arc<Mutex<State>>,
    start: Instant,
    /// Unix time at `start` (lease timestamps).
    epoch: u64,
}

impl Default for FakeCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCloud {
    pub fn new() -> Self {
        FakeCloud {
            state: Arc::new(Mutex::new(State::default())),
            start: Instant::now(),
            epoch: 1_800_000_000,
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long resources of `kind` stay pending after a create, update or delete.
    pub fn set_latency(&self, kind: Kind, latency: Duration) {
        self.st().latency.insert(kind, latency);
    }

    /// Creates and deletes of `kind` are done when answered ([`Cloud::settled`]): a Ready
    /// create and any delete are not polled.
    pub fn set_settled(&self, kind: Kind) {
        self.st().settled.insert(kind);
    }

    /// A deleted resource of `kind` is still listed by the next `observations` observations, as
    /// AWS's eventually consistent describes list it for a moment (its delete is done: other
    /// calls do not find it).
    pub fn linger(&self, kind: Kind, observations: usize) {
        self.st().linger.insert(kind, observations);
    }

    /// The latency of `kind` (zero unless set).
    pub fn latency(&self, kind: Kind) -> Duration {
        self.st().latency.get(&kind).copied().unwrap_or_default()
    }

    /// The `k`-th mutating call from now on (1-based) crashes the client at `point`: it and
    /// every later call fail until [`FakeCloud::recover`].
    pub fn crash_at(&self, k: usize, point: CrashPoint) {
        let mut st = self.st();
        st.crash = Some((st.mutating_calls + k, point));
    }

    /// The client "restarted": calls work again.
    pub fn recover(&self) {
        let mut st = self.st();
        st.crashed = false;
        st.crash = None;
    }

    /// Whether a crash happened (and was not recovered from).
    pub fn crashed(&self) -> bool {
        self.st().crashed
    }

    /// Creating the resource with logical id `id` fails with an API error.
    pub fn fail_create(&self, id: &str, message: &str) {
        self.st()
            .fail_create
            .insert(id.to_string(), message.to_string());
    }

    /// Updating the resource with logical id `id` fails with an API error.
    pub fn fail_update(&self, id: &str, message: &str) {
        self.st()
            .fail_update
            .insert(id.to_string(), message.to_string());
    }

    /// Creates and updates of `id` silently drop `field` (as AWS does with values it ignores or
    /// normalizes): read-back must notice.
    pub fn ignore_field(&self, id: &str, field: &str) {
        self.st().ignored.push((id.to_string(), field.to_string()));
    }

    /// The resource with logical id `id` ends in the state `failed` after its latency.
    pub fn fail_ready(&self, id: &str, status: &str) {
        self.st()
            .fail_ready
            .insert(id.to_string(), status.to_string());
    }

    /// The next `n` mutating calls for `id` fail with a retryable `Throttling` error.
    pub fn throttle(&self, id: &str, n: usize) {
        self.st().throttle.insert(id.to_string(), n);
    }

    /// Changes `field` of the resource with logical id `id` behind moodlestack's back.
    pub fn drift(&self, id: &str, field: &str, value: Value) {
        let mut st = self.st();
        for r in st.resources.values_mut() {
            if r.id.as_str() == id {
                r.fields.insert(field.to_string(), value.clone());
            }
        }
    }

    /// Adds a resource as if made by someone else (e.g. untagged, or another stack's).
    pub fn insert_foreign(&self, kind: Kind, physical_id: &str, fields: Fields) {
        let mut st = self.st();
        st.resources.insert(
            key(kind, physical_id),
            Res {
                id: ResourceId::from(format!("foreign:{physical_id}")),
                kind,
                physical_id: physical_id.to_string(),
                fields,
                attrs: BTreeMap::from([("id".to_string(), physical_id.to_string())]),
                ready_attrs: BTreeMap::new(),
                status: Status::Available,
                deleted_with: None,
            },
        );
    }

    /// A VPC (if given) and subnets that exist outside any stack, for [`Cloud::network`]: an
    /// existing network (`network.existing`) as someone else made it.
    pub fn add_network(&self, vpc: Option<VpcInfo>, subnets: Vec<SubnetInfo>) {
        let mut st = self.st();
        st.vpcs.extend(vpc);
        st.subnets.extend(subnets);
    }

    /// Every call so far.
    pub fn log(&self) -> Vec<Call> {
        self.st().log.clone()
    }

    pub fn clear_log(&self) {
        self.st().log.clear();
    }

    /// The most resources that had a mutating call in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.st().max_in_flight
    }

    /// How many create/update/delete calls were made.
    pub fn mutating_calls(&self) -> usize {
        self.st().mutating_calls
    }

    /// Every delete with its options (logical id as stored).
    pub fn deletes(&self) -> Vec<(ResourceId, DeleteOptions)> {
        self.st().deletes.clone()
    }

    /// Every resource that exists (settled at the current time): (logical id, kind, physical id).
    pub fn resources(&self) -> Vec<(ResourceId, Kind, String)> {
        let mut st = self.st();
        settle(&mut st, Instant::now());
        st.resources
            .values()
            .map(|r| (r.id.clone(), r.kind, r.physical_id.clone()))
            .collect()
    }

    /// The stored fields of the resource(s) with logical id `id`.
    pub fn fields_of(&self, id: &str) -> Vec<Fields> {
        let mut st = self.st();
        settle(&mut st, Instant::now());
        st.resources
            .values()
            .filter(|r| r.id.as_str() == id)
            .map(|r| r.fields.clone())
            .collect()
    }

    /// The current lease of `stack`, if any (expired ones included).
    pub fn lease(&self, stack: &str) -> Option<LeaseInfo> {
        self.st().leases.get(stack).cloned()
    }

    /// Unix time in the fake's clock (advances with tokio time).
    pub fn now_unix(&self) -> u64 {
        self.epoch + Instant::now().duration_since(self.start).as_secs()
    }

    fn record(&self, st: &mut State, op: Op, id: &str, kind: Option<Kind>) {
        st.log.push(Call {
            at: Instant::now().duration_since(self.start),
            op,
            id: id.to_string(),
            kind,
        });
    }

    /// Fails if crashed; for mutating calls counts the call and triggers a planned crash.
    /// Returns whether the call must take effect and then fail (crash after the call).
    fn gate(&self, st: &mut State, mutating: bool) -> Result<bool, CloudError> {
        if st.crashed {
            return Err(crash_error());
        }
        if !mutating {
            return Ok(false);
        }
        st.mutating_calls += 1;
        if let Some((k, point)) = st.crash {
            if st.mutating_calls == k {
                st.crashed = true;
                st.crash = None;
                return match point {
                    CrashPoint::BeforeCall => Err(crash_error()),
                    CrashPoint::AfterCall => Ok(true),
                };
            }
        }
        Ok(false)
    }

    /// The start of a mutating call `op` on `id`: the crash gate, the call log, then the
    /// throttle of `operation`. Whether the answer is to be lost ([`Self::gate`]).
    fn begin(
        &self,
        st: &mut State,
        op: Op,
        id: &str,
        kind: Kind,
        operation: &str,
    ) -> Result<bool, CloudError> {
        let lose_answer = self.gate(st, true)?;
        self.record(st, op, id, Some(kind));
        Self::throttled(st, id, operation)?;
        Ok(lose_answer)
    }

    fn throttled(st: &mut State, id: &str, operation: &str) -> Result<(), CloudError> {
        if let Some(n) = st.throttle.get_mut(id) {
            if *n > 0 {
                *n -= 1;
                return Err(CloudError::Api {
                    operation: operation.to_string(),
                    code: "Throttling".into(),
                    message: "Rate exceeded".into(),
                    source: None,
                });
            }
        }
        Ok(())
    }

    fn observed(r: &Res) -> Observed {
        let mut attrs = r.attrs.clone();
        if r.status == Status::Available {
            attrs.extend(r.ready_attrs.clone());
        }
        Observed {
            id: ObservedId::from(r.id.as_str()),
            kind: r.kind,
            physical_id: r.physical_id.clone(),
            fields: r.fields.clone(),
            attrs,
            status: status_word(&r.status).to_string(),
            lifecycle: match r.status {
                Status::Creating(_) => Lifecycle::Creating,
                Status::Updating(_) => Lifecycle::Modifying,
                Status::Deleting(_) => Lifecycle::Deleting,
                Status::Available => Lifecycle::Ready,
                Status::Failed(_) => Lifecycle::Failed,
            },
        }
    }

    fn until(st: &State, kind: Kind) -> Instant {
        Instant::now() + st.latency.get(&kind).copied().unwrap_or_default()
    }

    fn start_flight(st: &mut State, physical: &str) {
        if st.in_flight_ids.insert(physical.to_string()) {
            st.in_flight += 1;
            st.max_in_flight = st.max_in_flight.max(st.in_flight);
        }
    }

    /// The answer of a mutating call that started work on `key`: `out`, or the simulated crash
    /// when [`Self::gate`] said the answer is lost.
    fn started<T>(st: &mut State, key: &str, lose_answer: bool, out: T) -> Result<T, CloudError> {
        Self::start_flight(st, key);
        if lose_answer {
            return Err(crash_error());
        }
        Ok(out)
    }

    fn end_flight(st: &mut State, physical: &str) {
        if st.in_flight_ids.remove(physical) {
            st.in_flight -= 1;
        }
    }
}

/// Map key: names are unique per kind only (a DB subnet group and a DB instance may share one).
fn key(kind: Kind, physical: &str) -> String {
    format!("{}/{physical}", kind.name())
}

fn crash_error() -> CloudError {
    CloudError::Transport {
        operation: "fake".into(),
        detail: "simulated crash: the client is gone".into(),
        source: "simulated crash".into(),
    }
}

fn status_word(s: &Status) -> &str {
    match s {
        Status::Creating(_) => "creating",
        Status::Updating(_) => "modifying",
        Status::Deleting(_) => "deleting",
        Status::Available => "available",
        Status::Failed(s) => s,
    }
}

/// Moves resources whose latency has passed to their next state (deleted ones disappear).
fn settle(st: &mut State, now: Instant) {
    let mut gone = Vec::new();
    for (p, r) in st.resources.iter_mut() {
        match r.status {
            Status::Creating(t) | Status::Updating(t) if t <= now => {
                r.status = match st.fail_ready.get(r.id.as_str()) {
                    Some(s) => Status::Failed(s.clone()),
                    None => Status::Available,
                }
            }
            Status::Deleting(t) if t <= now => gone.push(p.clone()),
            _ => {}
        }
    }
    for p in gone {
        remove(st, &p);
    }
}

/// Removes the resource keyed `k`; a kind set to [`FakeCloud::linger`] leaves a ghost.
fn remove(st: &mut State, k: &str) {
    if let Some(r) = st.resources.remove(k) {
        if let Some(&n) = st.linger.get(&r.kind).filter(|n| **n > 0) {
            st.ghosts.push((r, n));
        }
    }
}

fn tag<'a>(fields: &'a Fields, key: &str) -> Option<&'a str> {
    fields
        .get("tags")
        .and_then(Value::as_map)
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// The physical id and attributes AWS would give a new resource of `kind`, simulated from its
/// descriptor alone: (physical id, attributes known at once, attributes known once ready).
/// Endpoints, DNS names and ports of endpoints appear only once the resource is ready; a member
/// of another resource (an Aurora instance) reports no credentials of its own.
#[allow(clippy::type_complexity)]
fn simulated_attrs(
    s: &KindSpec,
    fields: &Fields,
    name: Option<&str>,
    n: u64,
    region: &str,
) -> (
    String,
    Vec<(&'static str, String)>,
    Vec<(&'static str, String)>,
) {
    // `AWS::RDS::DBInstance` -> `rds`.
    let service = s
        .aws_type
        .split("::")
        .nth(1)
        .unwrap_or("fake")
        .to_ascii_lowercase();
    let generated = match s.physical_id {
        PhysicalId::Generated(prefix) => format!("{prefix}-{n:017x}"),
        _ => format!("{}-{n}", s.name),
    };
    let name = name.map_or_else(|| generated.clone(), str::to_string);
    let arn = format!("arn:aws:{service}:{region}:{ACCOUNT}:{}/{name}-{n}", s.name);
    let physical = match s.physical_id {
        PhysicalId::Generated(_) => generated,
        PhysicalId::Name => name.clone(),
        PhysicalId::Arn => arn.clone(),
    };
    let member = match s.on_delete {
        DeletePolicy::FinalSnapshot { member_of: Some(f) } => {
            fields.get(f).is_some_and(|v| *v != Value::Null)
        }
        _ => false,
    };
    let has_endpoint = s.attrs.iter().any(|a| a.ends_with("endpoint"));
    let (mut now, mut ready) = (Vec::new(), Vec::new());
    for &attr in s.attrs {
        let host = |label: &str| format!("{label}.c{n}.{region}.{service}.amazonaws.com");
        match attr {
            "id" => {}
            "arn" => now.push((attr, arn.clone())),
            "arn_suffix" => now.push((attr, format!("{}/{name}/{n:016x}", s.name))),
            "name" => now.push((attr, name.clone())),
            "version" => now.push((attr, "1".to_string())),
            "secret_arn" if member => {}
            "secret_arn" => now.push((
                attr,
                format!("arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{name}-{n:06}"),
            )),
            "endpoint" => ready.push((attr, host(&name))),
            a if a.ends_with("endpoint") => ready.push((attr, host(&format!("{a}.{name}")))),
            "dns_name" => {
                ready.push((attr, format!("{name}-{n}.{region}.{service}.amazonaws.com")))
            }
            "zone_id" => ready.push((attr, "Z35SXDOTRQ7X7K".to_string())),
            "port" => {
                let port = fields.get("port").and_then(Value::as_i64).unwrap_or(0);
                if has_endpoint {
                    ready.push((attr, port.to_string()));
                } else {
                    now.push((attr, port.to_string()));
                }
            }
            "public_ip" => now.push((attr, format!("203.0.113.{}", n % 250))),
            a if a.ends_with("ip") || a.ends_with("ip_address") => {
                now.push((attr, format!("10.0.{}.{}", n / 250 % 250, n % 250)));
            }
            // Status-like attributes (a parameter group's apply status) are not simulated.
            _ => {}
        }
    }
    (physical, now, ready)
}

const ACCOUNT: &str = "123456789012";

#[async_trait]
impl Cloud for FakeCloud {
    async fn observe(
        &self,
        scope: &Scope,
        _desired: &[Resource],
    ) -> Result<Vec<Observed>, CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        self.record(&mut st, Op::Observe, "", None);
        settle(&mut st, Instant::now());
        let tagged: Vec<&Res> = st
            .resources
            .values()
            .filter(|r| tag(&r.fields, TAG_STACK) == Some(scope.stack.as_str()))
            .collect();
        // Values that name a resource of the stack (physical ids and ARNs).
        let mut names: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for r in &tagged {
            names.insert(r.physical_id.as_str());
            names.extend(r.attrs.values().map(String::as_str));
        }
        let mut out: Vec<Observed> = tagged.iter().map(|r| Self::observed(r)).collect();
        out.extend(
            st.ghosts
                .iter()
                .filter(|(r, _)| tag(&r.fields, TAG_STACK) == Some(scope.stack.as_str()))
                .map(|(r, _)| Self::observed(r)),
        );
        for r in st.resources.values() {
            let identity = spec(r.kind).identity;
            if identity.is_empty() || tag(&r.fields, TAG_STACK) == Some(scope.stack.as_str()) {
                continue;
            }
            let ours = identity.iter().any(|f| {
                r.fields
                    .get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|v| names.contains(v))
            });
            if ours {
                let mut o = Self::observed(r);
                o.id = ObservedId::Untagged(r.physical_id.clone());
                out.push(o);
            }
        }
        st.ghosts.retain_mut(|(_, left)| {
            *left -= 1;
            *left > 0
        });
        Ok(out)
    }

    async fn create(&self, scope: &Scope, want: &Resource) -> Result<Observed, CloudError> {
        let (id, kind, fields) = (&want.id, want.kind, &want.fields);
        let mut st = self.st();
        let operation = format!("fake:Create{}", spec(kind).name);
        let lose_answer = self.begin(&mut st, Op::Create, id.as_str(), kind, &operation)?;
        if let Some(msg) = st.fail_create.get(id.as_str()) {
            return Err(CloudError::Api {
                operation,
                code: "InvalidParameterCombination".into(),
                message: msg.clone(),
                source: None,
            });
        }
        for (name, v) in fields {
            if !v.is_concrete() {
                return Err(CloudError::Field {
                    kind,
                    id: id.clone(),
                    field: name.clone(),
                    problem: "unresolved value passed to create".into(),
                });
            }
        }
        let kspec = spec(kind);
        if kspec.taggable()
            && (tag(fields, TAG_STACK) != Some(scope.stack.as_str())
                || tag(fields, TAG_ID) != Some(id.as_str()))
        {
            return Err(CloudError::Field {
                kind,
                id: id.clone(),
                field: "tags".into(),
                problem: format!("must carry {TAG_STACK} and {TAG_ID} on the create call"),
            });
        }
        settle(&mut st, Instant::now());
        let name = spec(kind)
            .name_field
            .and_then(|f| fields.get(f))
            .and_then(Value::as_str);
        if let Some(name) = name {
            if st.resources.values().any(|r| {
                r.kind == kind
                    && spec(kind)
                        .name_field
                        .and_then(|f| r.fields.get(f))
                        .and_then(Value::as_str)
                        == Some(name)
            }) {
                return Err(CloudError::Api {
                    operation,
                    code: "AlreadyExists".into(),
                    message: format!("{} {name} already exists", kspec.aws_type),
                    source: None,
                });
            }
        }
        st.counter += 1;
        let n = st.counter;
        let (physical, mut attrs, ready) = simulated_attrs(kspec, fields, name, n, &scope.region);
        attrs.push(("id", physical.clone()));
        let logical = if kspec.taggable() {
            id.clone()
        } else {
            ObservedId::Untagged(physical.clone()).to_resource_id()
        };
        let mut stored = fields.clone();
        for (i, f) in &st.ignored {
            if i == id.as_str() {
                stored.remove(f);
            }
        }
        let res = Res {
            id: logical,
            kind,
            physical_id: physical.clone(),
            fields: stored,
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ready_attrs: ready.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            status: Status::Creating(Self::until(&st, kind)),
            deleted_with: None,
        };
        // A settled kind without latency is usable when the create answers.
        let done = st.settled.contains(&kind)
            && Self::until(&st, kind) <= Instant::now()
            && !st.fail_ready.contains_key(id.as_str());
        let mut res = res;
        if done {
            res.status = Status::Available;
        }
        let mut out = Self::observed(&res);
        out.id = id.clone().into();
        // A resource made again under the name of one just deleted is what AWS lists.
        st.ghosts
            .retain(|(g, _)| key(g.kind, &g.physical_id) != key(kind, &physical));
        st.resources.insert(key(kind, &physical), res);
        let answer = Self::started(&mut st, &key(kind, &physical), lose_answer, out);
        if done {
            Self::end_flight(&mut st, &key(kind, &physical));
        }
        answer
    }

    async fn update(
        &self,
        _scope: &Scope,
        current: &Observed,
        fields: &Fields,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let mut st = self.st();
        let id = current.id.to_string();
        let lose_answer = self.begin(&mut st, Op::Update, &id, current.kind, "fake:Update")?;
        if let Some(msg) = st.fail_update.get(id.as_str()) {
            return Err(CloudError::Api {
                operation: "fake:Update".into(),
                code: "InvalidParameterValue".into(),
                message: msg.clone(),
                source: None,
            });
        }
        settle(&mut st, Instant::now());
        let until = Self::until(&st, current.kind);
        let ignored: Vec<String> = st
            .ignored
            .iter()
            .filter(|(i, _)| i == id.as_str())
            .map(|(_, f)| f.clone())
            .collect();
        let Some(r) = st
            .resources
            .get_mut(&key(current.kind, &current.physical_id))
        else {
            return Err(CloudError::NotFound(current.physical_id.clone()));
        };
        for f in changed.iter().filter(|f| !ignored.contains(f)) {
            let kspec = spec(r.kind);
            let Some(fs) = kspec.field(f) else {
                return Err(CloudError::Field {
                    kind: r.kind,
                    id: current.id.to_resource_id(),
                    field: f.clone(),
                    problem: "not a field of this kind".into(),
                });
            };
            if fs.on_change != moodlestack_model::OnChange::InPlace {
                return Err(CloudError::Field {
                    kind: r.kind,
                    id: current.id.to_resource_id(),
                    field: f.clone(),
                    problem: "cannot be updated in place".into(),
                });
            }
            match fields.get(f) {
                Some(v) if !v.is_concrete() => {
                    return Err(CloudError::Field {
                        kind: r.kind,
                        id: current.id.to_resource_id(),
                        field: f.clone(),
                        problem: "unresolved value passed to update".into(),
                    })
                }
                Some(v) => {
                    if fs.compare == moodlestack_model::Compare::Subset {
                        // Keys the stack sets are written; others stay.
                        let mut merged = r
                            .fields
                            .get(f)
                            .and_then(Value::as_map)
                            .cloned()
                            .unwrap_or_default();
                        if let Some(m) = v.as_map() {
                            merged.extend(m.clone());
                        }
                        r.fields.insert(f.clone(), Value::Map(merged));
                    } else {
                        r.fields.insert(f.clone(), v.clone());
                    }
                }
                None => {
                    r.fields.remove(f);
                }
            }
        }
        // Attributes an update changes (a launch template's version) move on.
        for attr in spec(r.kind).attrs_changed_by_update {
            let v: u64 = r.attrs.get(*attr).and_then(|v| v.parse().ok()).unwrap_or(1);
            r.attrs.insert((*attr).to_string(), (v + 1).to_string());
        }
        r.status = Status::Updating(until);
        let mut out = Self::observed(r);
        out.id = current.id.clone();
        let physical = r.physical_id.clone();
        Self::started(&mut st, &key(current.kind, &physical), lose_answer, out)
    }

    async fn delete(
        &self,
        _scope: &Scope,
        current: &Observed,
        options: &DeleteOptions,
    ) -> Result<(), CloudError> {
        let mut st = self.st();
        let id = current.id.to_string();
        let lose_answer = self.begin(&mut st, Op::Delete, &id, current.kind, "fake:Delete")?;
        settle(&mut st, Instant::now());
        let until = Self::until(&st, current.kind);
        let Some(r) = st
            .resources
            .get_mut(&key(current.kind, &current.physical_id))
        else {
            return Err(CloudError::NotFound(current.physical_id.clone()));
        };
        if r.fields.get("deletion_protection") == Some(&Value::Bool(true)) {
            if !options.lift_deletion_protection {
                return Err(CloudError::Api {
                    operation: "fake:Delete".into(),
                    code: "InvalidParameterCombination".into(),
                    message: format!("{} has deletion protection enabled", r.physical_id),
                    source: None,
                });
            }
            r.fields
                .insert("deletion_protection".into(), Value::Bool(false));
        }
        if !matches!(r.status, Status::Deleting(_)) {
            r.status = Status::Deleting(until);
        }
        r.deleted_with = Some(options.clone());
        let id = r.id.clone();
        st.deletes.push((id, options.clone()));
        let k = key(current.kind, &current.physical_id);
        let answer = Self::started(&mut st, &k, lose_answer, ());
        // A settled kind without latency is gone when the delete answers.
        if st.settled.contains(&current.kind) && until <= Instant::now() {
            remove(&mut st, &k);
            Self::end_flight(&mut st, &k);
        }
        answer
    }

    fn settled(&self, o: &Observed, want: Want) -> bool {
        self.st().settled.contains(&o.kind)
            && (want == Want::Gone || o.lifecycle == moodlestack_model::Lifecycle::Ready)
    }

    async fn poll(
        &self,
        _scope: &Scope,
        current: &Observed,
        want: Want,
    ) -> Result<Readiness, CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        settle(&mut st, Instant::now());
        let id = current.id.to_string();
        let (op, out) = match st.resources.get(&key(current.kind, &current.physical_id)) {
            None => (Op::PollGone, Readiness::Gone),
            Some(r) => match (&r.status, want) {
                (Status::Failed(s), _) => (
                    Op::PollFailed,
                    Readiness::Failed {
                        status: s.clone(),
                        fix: None,
                    },
                ),
                (Status::Available, Want::Ready) => {
                    let mut o = Self::observed(r);
                    o.id = current.id.clone();
                    (Op::PollReady, Readiness::Ready(o))
                }
                (s, _) => (
                    Op::PollPending,
                    Readiness::Pending(status_word(s).to_string()),
                ),
            },
        };
        if matches!(op, Op::PollGone | Op::PollReady | Op::PollFailed) {
            Self::end_flight(&mut st, &key(current.kind, &current.physical_id));
        }
        self.record(&mut st, op, &id, Some(current.kind));
        Ok(out)
    }

    async fn resolve_parameter(&self, name: &str) -> Result<String, CloudError> {
        if name.contains("ami-id") {
            Ok("ami-0123456789abcdef0".into())
        } else {
            Err(CloudError::NotFound(format!("parameter {name}")))
        }
    }

    async fn account_id(&self) -> Result<String, CloudError> {
        Ok(ACCOUNT.into())
    }

    async fn image(&self, image_id: &str) -> Result<Option<ImageInfo>, CloudError> {
        Ok(Some(ImageInfo {
            image_id: image_id.to_string(),
            architecture: "x86_64".into(),
            root_device_name: "/dev/sda1".into(),
        }))
    }

    async fn network(
        &self,
        vpc_id: &str,
        subnet_ids: &[String],
    ) -> Result<NetworkInfo, CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        self.record(&mut st, Op::Network, vpc_id, None);
        Ok(NetworkInfo {
            vpc: st.vpcs.iter().find(|v| v.vpc_id == vpc_id).cloned(),
            subnets: st
                .subnets
                .iter()
                .filter(|s| subnet_ids.contains(&s.subnet_id))
                .cloned()
                .collect(),
        })
    }

    async fn acquire_lease(
        &self,
        scope: &Scope,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseInfo, CloudError> {
        let now = self.now_unix();
        let mut st = self.st();
        self.gate(&mut st, false)?;
        self.record(&mut st, Op::AcquireLease, owner, None);
        if let Some(l) = st.leases.get(&scope.stack) {
            if l.owner != owner && l.expires_at > now {
                return Err(CloudError::LeaseHeld(l.clone()));
            }
        }
        let acquired_at = match st.leases.get(&scope.stack) {
            Some(l) if l.owner == owner && l.expires_at > now => l.acquired_at,
            _ => now,
        };
        let lease = LeaseInfo {
            owner: owner.to_string(),
            acquired_at,
            expires_at: now + ttl.as_secs(),
        };
        st.leases.insert(scope.stack.clone(), lease.clone());
        Ok(lease)
    }

    async fn release_lease(&self, scope: &Scope, owner: &str) -> Result<(), CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        self.record(&mut st, Op::ReleaseLease, owner, None);
        if st
            .leases
            .get(&scope.stack)
            .is_some_and(|l| l.owner == owner)
        {
            st.leases.remove(&scope.stack);
        }
        Ok(())
    }

    fn now_unix(&self) -> u64 {
        // The fake's own clock (tokio's, paused in tests), as the inherent method reads it.
        FakeCloud::now_unix(self)
    }

    async fn lease(&self, scope: &Scope) -> Result<Option<LeaseInfo>, CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        Ok(st.leases.get(&scope.stack).cloned())
    }

    async fn break_lease(&self, scope: &Scope, held: &LeaseInfo) -> Result<bool, CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        self.record(&mut st, Op::BreakLease, &held.owner, None);
        match st.leases.get(&scope.stack) {
            Some(l) if l == held => {
                st.leases.remove(&scope.stack);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Ok(true),
        }
    }

    /// The fake keeps no snapshots or recovery points: a stack has none.
    async fn restore_points(
        &self,
        _scope: &Scope,
    ) -> Result<Vec<moodlestack_model::RestorePoint>, CloudError> {
        let mut st = self.st();
        self.gate(&mut st, false)?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn network_answers_what_was_added_and_leaves_out_the_rest() {
        let cloud = FakeCloud::new();
        let vpc = VpcInfo {
            vpc_id: "vpc-1".into(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
        };
        let subnet = |id: &str, zone: &str| SubnetInfo {
            subnet_id: id.into(),
            vpc_id: "vpc-1".into(),
            availability_zone: zone.into(),
        };
        let ids = vec!["subnet-a".to_string(), "subnet-x".to_string()];
        // A fresh account: nothing exists.
        assert_eq!(
            cloud.network("vpc-1", &ids).await.unwrap(),
            NetworkInfo::default()
        );
        cloud.add_network(
            Some(vpc.clone()),
            vec![
                subnet("subnet-a", "eu-west-1a"),
                subnet("subnet-b", "eu-west-1b"),
            ],
        );
        let got = cloud.network("vpc-1", &ids).await.unwrap();
        assert_eq!(got.vpc, Some(vpc));
        assert_eq!(got.subnets, vec![subnet("subnet-a", "eu-west-1a")]);
        assert_eq!(cloud.network("vpc-2", &[]).await.unwrap().vpc, None);
        let calls: Vec<Op> = cloud.log().iter().map(|c| c.op).collect();
        assert_eq!(calls, vec![Op::Network; 3]);
    }
}
