//! The resource kinds moodlestack manages and, per kind, everything the generic layers know about
//! it: the managed fields (how each is compared, whether a change updates in place or forces
//! replacement), the field holding its own name, the attributes other resources may reference,
//! what a delete does to its data, the notes a plan shows for its changes, and how long it takes
//! to become usable.
//!
//! One descriptor ([`KindSpec`]) per kind, in one file per AWS service (`ec2.rs`, `rds.rs`, ...).
//! The diff, the executor, the printer and the CLI read these descriptors and never name a kind.
//! Each service file lists its kinds (`ec2_kinds!` at the top of `ec2.rs`); the [`kinds!`] table
//! at the end of this file joins those lists and generates [`Kind`], [`Kind::ALL`] and [`spec`],
//! so a kind cannot exist without its descriptor.
//!
//! Field conventions shared by every kind:
//! - `tags` (Map, compared on the keys the stack sets): every tag, including `moodlestack:stack`,
//!   `moodlestack:id` and `Name`; applied on the create call itself.
//! - ids of other resources are strings (`vpc_id`, `subnet_ids`, ...); lists of ids are sets.
//! - durations are integer seconds, sizes integer GiB, booleans are booleans.
//! - `deletion_protection` (Bool), where a kind has it, is lifted on delete only with
//!   `--allow-data-loss`.

/// Declares a service file's list of kinds (`kind_list! { $ ec2_kinds [...] }` at the top of
/// `ec2.rs`): a macro named `ec2_kinds` that adds the file's rows
/// (`Variant("snake_name", "AWS::Type") => DESCRIPTOR,`, each with its doc) to the table's
/// accumulator and hands it on to the next list (see `table!`). The leading `$` is passed in
/// because a macro cannot write the `$` of the macro it declares.
macro_rules! kind_list {
    ($d:tt $name:ident [$($rows:tt)*]) => {
        macro_rules! $name {
            ([$d($d acc:tt)*] $d($d rest:ident)*) => {
                table! { [$d($d acc)* $($rows)*] $d($d rest)* }
            };
        }
    };
}

#[macro_use]
mod asg;
#[macro_use]
mod backup;
#[macro_use]
mod cloudwatch;
#[macro_use]
mod ec2;
#[macro_use]
mod efs;
#[macro_use]
mod elasticache;
#[macro_use]
mod elbv2;
#[macro_use]
mod iam;
#[macro_use]
mod kms;
#[macro_use]
mod logs;
#[macro_use]
mod rds;
#[macro_use]
mod s3;
#[macro_use]
mod secrets;
#[macro_use]
mod sns;

pub use backup::TAG_NAME;
pub use rds::{TAG_CODE, TAG_CODE_BEFORE, TAG_RESTORED_FROM};

use crate::change::{ChangeView, Note};
use crate::cost::{no_usage, Usage, UsageCx};
use crate::{Fields, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// What a change to a field does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// The service updates it in place.
    InPlace,
    /// The resource must be deleted and created again.
    Replace,
    /// Set at creation only and never compared afterwards (the ASG's desired capacity: autoscaling
    /// owns it).
    CreateOnly,
}

/// How an observed value is compared with the desired one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Equal values.
    Exact,
    /// Lists compared without regard to order (ids, rules); duplicates do not count.
    Set,
    /// Maps compared only on the keys the stack sets: AWS-side defaults and tags that others add
    /// never show up as changes. A key the stack sets that is missing or different is a change.
    Subset,
    /// A number AWS may raise on its own (RDS storage autoscaling grows `allocated_storage`):
    /// at least the desired value is no change; only a larger desired value is.
    AtLeast,
    /// An engine version AWS may upgrade on its own within its release line (RDS automatic minor
    /// version upgrades): a version at least the desired one in the same line is no change, so a
    /// plan never asks for a downgrade. See [`version_satisfies`].
    Version,
    /// A size a schedule moves (the Auto Scaling group's `min_size`/`max_size` when the stack has
    /// scheduled actions): the desired value is a list of accepted values whose first is what a
    /// create or update sends; an observed value among them is no change, so a plan made while a
    /// scheduled action holds the group at its own sizes does not undo it. A plain (non-list)
    /// desired value compares exactly.
    OneOf,
}

impl Compare {
    /// Whether AWS changes fields compared this way on its own (left out of the saved-plan
    /// digest: such a change between plan and apply does not make the plan stale).
    pub fn moves_on_its_own(self) -> bool {
        matches!(self, Compare::AtLeast | Compare::Version | Compare::OneOf)
    }
}

/// Whether the engine version `have` satisfies the desired `want`: `want` names a release line
/// (`8.0`, `16`) that `have` is in, or `have` is `want` or a later version of the same line.
/// A `want` shorter than `have` names a line; the line of a full version is all but its last
/// number (`8.0.39`: `8.0`; `16.4`: `16`); for
/// versions with a name in them, the name and the number after it too
/// (`8.0.mysql_aurora.3.08.0`: `8.0.mysql_aurora.3`). Numbers compare as numbers.
pub fn version_satisfies(have: &str, want: &str) -> bool {
    let h: Vec<&str> = have.split('.').collect();
    let w: Vec<&str> = want.split('.').collect();
    if w.len() <= h.len() && h[..w.len()] == w[..] {
        return true;
    }
    if w.len() < h.len() {
        // A release line (`8.0`) that `have` is not in.
        return false;
    }
    let line = match w.iter().position(|t| t.parse::<u64>().is_err()) {
        Some(named) => (named + 2).min(w.len()),
        None => w.len() - 1,
    };
    if line == 0 || h.len() < line || h[..line] != w[..line] {
        return false;
    }
    let key = |t: &&str| (t.parse::<u64>().ok(), t.to_string());
    h[line..].iter().map(key).cmp(w[line..].iter().map(key)) != std::cmp::Ordering::Less
}

/// One managed field of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field's name in [`Fields`] (snake_case).
    pub name: &'static str,
    /// What a change of it does.
    pub on_change: OnChange,
    /// How the observed value is compared with the desired one.
    pub compare: Compare,
}

impl FieldSpec {
    /// Whether the desired value `want` differs from the observed `have` under this field's
    /// [`Compare`] mode: the one comparison rule of moodlestack (the diff, adoption after a crash
    /// and the tests all use it).
    ///
    /// - AWS not reporting a field is the same as it being null.
    /// - Unknown or unresolved parts of `want` always differ ("known after apply").
    /// - [`Compare::Set`]: lists equal as sets (order and duplicates do not count).
    /// - [`Compare::Subset`]: only the keys `want` sets are compared.
    /// - [`Compare::AtLeast`]: a larger observed number is no change.
    /// - [`Compare::Version`]: a later version of the same release line is no change.
    pub fn differs(&self, want: &Value, have: Option<&Value>) -> bool {
        let Some(have) = have else {
            return !matches!(want, Value::Null);
        };
        if !want.is_concrete() {
            return true;
        }
        match (self.compare, want, have) {
            (Compare::Set, Value::List(w), Value::List(h)) => canonical_set(w) != canonical_set(h),
            (Compare::Subset, Value::Map(w), Value::Map(h)) => {
                w.iter().any(|(k, v)| h.get(k).is_none_or(|hv| hv != v))
            }
            (Compare::AtLeast, Value::Int(w), Value::Int(h)) => h < w,
            (Compare::Version, Value::Str(w), Value::Str(h)) => !version_satisfies(h, w),
            (Compare::OneOf, Value::List(w), h) if !matches!(h, Value::List(_)) => !w.contains(h),
            _ => want != have,
        }
    }
}

fn canonical_set(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|v| serde_json::to_string(v).unwrap_or_default())
        .collect()
}

/// What AWS calls a resource of a kind (its physical id, also its `id` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysicalId {
    /// An id AWS generates, with this prefix (`vpc` for `vpc-0abc…`).
    Generated(&'static str),
    /// The name given at creation ([`KindSpec::name_field`]).
    Name,
    /// The ARN AWS assigns.
    Arn,
}

/// What deleting a resource of a kind does to the data it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Deleted outright. If the kind is [`KindSpec::stateful`], its data is lost with it.
    Plain,
    /// A database: a delete takes a final snapshot (unless the user skips it), except when the
    /// field `member_of` is set (an Aurora cluster member: the cluster holds the data and takes
    /// the snapshot).
    FinalSnapshot {
        /// The field naming the resource that holds this one's data, if any.
        member_of: Option<&'static str>,
    },
    /// Never deleted: a delete releases it from the stack (it loses its `moodlestack:id` tag) and
    /// it stays in AWS (a database snapshot: a restore point).
    Release,
}

/// What deleting one observed resource risks, from its kind's [`DeletePolicy`] and its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteRisk {
    /// The delete takes a final snapshot when the user gives one (databases).
    pub snapshots: bool,
    /// Its data is lost and no snapshot can keep it (file system, cache).
    pub loses_data: bool,
    /// Deletion protection is on: lifting it needs `--allow-data-loss`.
    pub protected: bool,
}

/// Everything the generic diff, plan, executor and CLI know about a kind.
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    /// The kind this spec describes.
    pub kind: Kind,
    /// snake_case name.
    pub name: &'static str,
    /// The AWS resource type, for messages (`AWS::RDS::DBInstance`).
    pub aws_type: &'static str,
    /// The managed fields.
    pub fields: &'static [FieldSpec],
    /// The field that holds the resource's own unique name, for kinds whose API keys them by
    /// name (`role_name`, `identifier`, `name`); None for kinds AWS names by id.
    pub name_field: Option<&'static str>,
    /// What AWS calls it: a generated id, its name or its ARN.
    pub physical_id: PhysicalId,
    /// Attributes other resources may reference (`id` always; `arn`, `endpoint`, ...). The graph
    /// builder refuses a reference to any other attribute.
    pub attrs: &'static [&'static str],
    /// Holds data that a delete or replace would lose: guarded by `--allow-data-loss`.
    pub stateful: bool,
    /// What a delete does to the data.
    pub on_delete: DeletePolicy,
    /// Creation tier: a kind only depends on kinds of a lower tier. Deletes of resources the stack
    /// no longer declares run in reverse tier order.
    pub tier: u8,
    /// Resources AWS cannot tag are matched to desired ones by these fields (resolved values);
    /// empty for kinds found by the `moodlestack:id` tag.
    pub identity: &'static [&'static str],
    /// Fields that hold policy documents (an IAM role's inline policies): the ARNs in them name
    /// other resources without using them, and AWS keeps a policy that names a deleted resource.
    /// A reference there orders creates (the ARN must be known) but not deletes: a destroy starts
    /// on the database, the file system and the bucket without waiting for the node role.
    pub names_only: &'static [&'static str],
    /// Attributes that an in-place update changes (refs to them are unknown while an update of
    /// this resource is planned; e.g. a launch template's `version`).
    pub attrs_changed_by_update: &'static [&'static str],
    /// How long the executor waits for a created/updated resource to become usable on AWS.
    pub ready_timeout: Duration,
    /// Notes the plan shows under a change of this kind (restarts, rollouts, pending reboots),
    /// beside the generic data-loss notes of stateful kinds.
    pub notes: fn(&ChangeView<'_>) -> Vec<Note>,
    /// In which order a replacement runs.
    pub replace: ReplaceOrder,
    /// What a resource of this kind is billed for (`plan --cost`): the prices to look up and how
    /// much of each a month, read from its fields (desired or observed). Empty for kinds AWS
    /// does not bill.
    pub usage: fn(&UsageCx<'_>) -> Vec<Usage>,
}

/// In which order a replacement deletes the old resource and creates the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceOrder {
    /// Delete the old one, then create the new one (the two cannot exist side by side: a subnet's
    /// CIDR, a mount target's zone, the one stable node that runs cron).
    DeleteFirst,
    /// When the new one has another name (a parameter group of a new engine family, a security
    /// group renamed): create it first, move every user to it, then delete the old one, which
    /// AWS refuses to delete while it is in use (`DependencyViolation`,
    /// `InvalidDBParameterGroupState`, `ResourceInUse`). With the same name: delete first.
    CreateFirstWhenRenamed,
}

impl KindSpec {
    /// Whether replacing `current` by `desired` creates the new one before deleting the old one
    /// ([`ReplaceOrder::CreateFirstWhenRenamed`] and a new, known name).
    pub fn creates_first(&self, desired: &Fields, current: &Fields) -> bool {
        let (ReplaceOrder::CreateFirstWhenRenamed, Some(name)) = (self.replace, self.name_field)
        else {
            return false;
        };
        matches!(desired.get(name), Some(Value::Str(new)) if current.get(name) != Some(&Value::Str(new.clone())))
    }
}

impl KindSpec {
    /// The managed field `name`, if the kind has it.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields that describe the resource itself (its own name, free text), never another
    /// resource: a delete does not wait for a resource whose only mention of another is there.
    pub fn is_own_field(&self, field: &str) -> bool {
        matches!(field, "tags" | "description" | "user_data") || self.name_field == Some(field)
    }

    /// Whether a resource that an observed `field` of this kind mentions (by id, ARN or name) is
    /// deleted after it: not for its own fields ([`Self::is_own_field`], where a name may stand
    /// in free text) nor for policy documents ([`Self::names_only`]). The declared graph's
    /// references follow `names_only` alone (`Resource::delete_deps`).
    pub fn orders_deletes(&self, field: &str) -> bool {
        !self.is_own_field(field) && !self.names_only.contains(&field)
    }

    /// Whether resources of this kind carry tags (a `tags` field). Only those can be told apart
    /// by `moodlestack:id`; an untaggable kind (a mount target) is the stack's through its parent.
    pub fn taggable(&self) -> bool {
        self.field("tags").is_some()
    }

    /// Whether an attribute of this kind may be referenced.
    pub fn has_attr(&self, attr: &str) -> bool {
        self.attrs.contains(&attr)
    }

    /// What deleting a resource of this kind with these observed `fields` risks.
    pub fn delete_risk(&self, fields: &Fields) -> DeleteRisk {
        let protected = fields.get("deletion_protection") == Some(&Value::Bool(true));
        match self.on_delete {
            DeletePolicy::FinalSnapshot { member_of } => {
                let member = member_of
                    .and_then(|f| fields.get(f))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                DeleteRisk {
                    snapshots: !member,
                    loses_data: false,
                    protected: protected && !member,
                }
            }
            DeletePolicy::Plain => DeleteRisk {
                snapshots: false,
                loses_data: self.stateful,
                protected,
            },
            DeletePolicy::Release => DeleteRisk::default(),
        }
    }
}

/// Notes of a kind whose changes have no operational effect worth a note.
pub fn no_notes(_: &ChangeView<'_>) -> Vec<Note> {
    Vec::new()
}

pub(crate) const fn f(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Exact,
    }
}
pub(crate) const fn set(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Set,
    }
}
pub(crate) const fn repl(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::Replace,
        compare: Compare::Exact,
    }
}
pub(crate) const fn subset(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Subset,
    }
}
pub(crate) const fn create_only(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::CreateOnly,
        compare: Compare::Exact,
    }
}
pub(crate) const fn at_least(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::AtLeast,
    }
}
pub(crate) const fn version(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Version,
    }
}
pub(crate) const fn one_of(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::OneOf,
    }
}
pub(crate) const TAGS: FieldSpec = subset("tags");
pub(crate) const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// The defaults every descriptor starts from: a descriptor states only what differs and completes
/// itself with `..DEFAULT` (or a base made from it, such as [`NAMED`]). Its kind, snake_case name
/// and AWS type are not among them: the kind's row in its service's `kind_list!` states them
/// (`Vpc("vpc", "AWS::EC2::VPC") => ec2::VPC`), and [`spec`] fills them in.
pub(crate) const DEFAULT: KindSpec = KindSpec {
    kind: Kind::Vpc,
    name: "",
    aws_type: "",
    fields: &[],
    name_field: None,
    physical_id: PhysicalId::Name,
    attrs: &["id"],
    stateful: false,
    on_delete: DeletePolicy::Plain,
    tier: 0,
    identity: &[],
    names_only: &[],
    attrs_changed_by_update: &[],
    ready_timeout: mins(5),
    notes: no_notes,
    replace: ReplaceOrder::DeleteFirst,
    usage: no_usage,
};

/// The defaults of a kind AWS keys by its `name` field and that others may reference by id and
/// ARN (`..NAMED`).
pub(crate) const NAMED: KindSpec = KindSpec {
    name_field: Some("name"),
    attrs: &["id", "arn"],
    ..DEFAULT
};

/// Generates [`Kind`], [`Kind::ALL`] and [`spec`] from one list of
/// `Variant("snake_name", "AWS::Type") => DESCRIPTOR`, so the enum, the list and the descriptors
/// cannot disagree.
macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident($name:literal, $aws_type:literal) => $spec:path,)*) => {
        /// Every kind of resource moodlestack creates.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($(#[$doc])* $kind,)*
        }

        impl Kind {
            /// How many kinds there are.
            pub const COUNT: usize = [$(stringify!($kind)),*].len();
            /// Every kind, in declaration order.
            pub const ALL: [Kind; Kind::COUNT] = [$(Kind::$kind),*];
        }

        /// The descriptor of `kind`.
        pub fn spec(kind: Kind) -> &'static KindSpec {
            match kind {
                $(Kind::$kind => {
                    const SPEC: KindSpec = KindSpec {
                        kind: Kind::$kind,
                        name: $name,
                        aws_type: $aws_type,
                        ..$spec
                    };
                    &SPEC
                })*
            }
        }

        /// Calls the macro `$m` with every kind's variant name (`Vpc InternetGateway ...`), so
        /// that another crate can build an exhaustive registry without listing the kinds again
        /// (the AWS implementations: `moodlestack_aws`'s `ops`).
        #[macro_export]
        macro_rules! with_kinds {
            ($m:ident) => { $m! { $($kind)* } };
        }
    };
}

// The table: each service file lists its kinds in a macro named after it (`ec2_kinds!`, at the
// top of `ec2.rs`), so a new kind is declared in the one file that holds its descriptor; `table!`
// joins the lists, in this order (which is `Kind::ALL`'s), into `kinds!`.
macro_rules! table {
    ([$($acc:tt)*]) => { kinds! { $($acc)* } };
    ([$($acc:tt)*] $list:ident $($rest:ident)*) => { $list! { [$($acc)*] $($rest)* } };
}

table! { [] ec2_kinds iam_kinds secrets_kinds s3_kinds rds_kinds efs_kinds elasticache_kinds elbv2_kinds asg_kinds backup_kinds kms_kinds logs_kinds sns_kinds cloudwatch_kinds }

impl Kind {
    /// The snake_case name used in plans and JSON (`db_instance`).
    pub fn name(self) -> &'static str {
        spec(self).name
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_descriptor() {
        for k in Kind::ALL {
            assert_eq!(spec(k).kind, k, "descriptor of {k:?} names another kind");
            assert!(!spec(k).name.is_empty(), "{k:?} has no name");
            assert!(!spec(k).aws_type.is_empty(), "{k:?} has no AWS type");
            assert!(spec(k).has_attr("id"), "{k:?} lacks the `id` attribute");
        }
        let names: BTreeSet<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), Kind::COUNT, "two kinds share a name");
    }

    #[test]
    fn versions_satisfy_within_their_release_line_never_backwards() {
        let cases = [
            ("8.0.40", "8.0.39", true),
            ("8.0.39", "8.0.39", true),
            ("8.0.39", "8.0.40", false),
            ("8.0.40", "8.0", true),
            ("8.4.3", "8.0.39", false),
            ("8.4.3", "8.0", false),
            ("16.6", "16.4", true),
            ("16.4", "16", true),
            ("17.2", "16.4", false),
            ("10.11.10", "10.11.9", true),
            ("11.4.3", "10.11.9", false),
            ("8.0.mysql_aurora.3.08.1", "8.0.mysql_aurora.3.08.0", true),
            ("8.0.mysql_aurora.3.09.0", "8.0.mysql_aurora.3.08.0", true),
            ("8.0.mysql_aurora.3.07.1", "8.0.mysql_aurora.3.08.0", false),
            ("8.0.mysql_aurora.3.08.0", "8.0.mysql_aurora.3", true),
        ];
        for (have, want, ok) in cases {
            assert_eq!(version_satisfies(have, want), ok, "{have} satisfies {want}");
        }
        let v = version("engine_version");
        assert!(!v.differs(&Value::str("8.0.39"), Some(&Value::str("8.0.40"))));
        assert!(v.differs(&Value::str("8.0.41"), Some(&Value::str("8.0.40"))));
        let s = at_least("allocated_storage");
        assert!(!s.differs(&Value::Int(200), Some(&Value::Int(220))));
        assert!(s.differs(&Value::Int(300), Some(&Value::Int(220))));
        let o = one_of("min_size");
        let accepted = Value::List(vec![Value::Int(2), Value::Int(6)]);
        assert!(!o.differs(&accepted, Some(&Value::Int(6))));
        assert!(!o.differs(&accepted, Some(&Value::Int(2))));
        assert!(o.differs(&accepted, Some(&Value::Int(4))));
        assert!(!o.differs(&Value::Int(2), Some(&Value::Int(2))));
        assert!(o.differs(&Value::Int(2), Some(&Value::Int(6))));
    }

    #[test]
    fn named_fields_are_fields() {
        for k in Kind::ALL {
            let s = spec(k);
            for id in s.identity {
                assert!(s.field(id).is_some(), "{k:?} identity {id}");
            }
            if let Some(n) = s.name_field {
                assert!(s.field(n).is_some(), "{k:?} name field {n}");
            }
            if s.physical_id == PhysicalId::Name {
                assert!(
                    s.name_field.is_some(),
                    "{k:?} is named but has no name field"
                );
            }
            if s.physical_id == PhysicalId::Arn {
                assert!(
                    s.has_attr("arn"),
                    "{k:?} is known by its ARN but has no `arn`"
                );
            }
            if let DeletePolicy::FinalSnapshot { member_of: Some(m) } = s.on_delete {
                assert!(s.field(m).is_some(), "{k:?} member field {m}");
            }
            for a in s.attrs_changed_by_update {
                assert!(s.has_attr(a), "{k:?} attr changed by update {a}");
            }
        }
    }

    #[test]
    fn one_comparison_rule() {
        let set = FieldSpec {
            name: "x",
            on_change: OnChange::InPlace,
            compare: Compare::Set,
        };
        let a = Value::strs(["a", "b"]);
        assert!(!set.differs(&Value::strs(["b", "a"]), Some(&a)));
        assert!(!set.differs(&Value::strs(["b", "a", "a"]), Some(&a)));
        assert!(set.differs(&Value::strs(["a"]), Some(&a)));
        // Absent is null.
        assert!(!set.differs(&Value::Null, None));
        assert!(set.differs(&a, None));
        let subset = FieldSpec {
            compare: Compare::Subset,
            ..set
        };
        let have =
            Value::Map([("k".into(), Value::str("v")), ("x".into(), Value::str("y"))].into());
        assert!(!subset.differs(
            &Value::Map([("k".into(), Value::str("v"))].into()),
            Some(&have)
        ));
        assert!(subset.differs(
            &Value::Map([("k".into(), Value::str("w"))].into()),
            Some(&have)
        ));
        let exact = FieldSpec {
            compare: Compare::Exact,
            ..set
        };
        assert!(exact.differs(&Value::strs(["b", "a"]), Some(&a)));
        assert!(exact.differs(&Value::reference("r", "id"), Some(&a)));
    }

    #[test]
    fn delete_risk_follows_the_policy() {
        let db = spec(Kind::DbInstance);
        let standalone = Fields::from([("deletion_protection".into(), Value::Bool(true))]);
        let risk = db.delete_risk(&standalone);
        assert!(risk.snapshots && risk.protected && !risk.loses_data);
        let member = Fields::from([("cluster_identifier".into(), Value::str("c"))]);
        assert_eq!(db.delete_risk(&member), DeleteRisk::default());
        let fs = spec(Kind::EfsFileSystem).delete_risk(&Fields::new());
        assert!(fs.loses_data && !fs.snapshots);
        assert_eq!(
            spec(Kind::Vpc).delete_risk(&Fields::new()),
            DeleteRisk::default()
        );
    }
}
