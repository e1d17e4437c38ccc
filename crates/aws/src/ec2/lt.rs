//! Launch templates (a new version per change, the full data every time) and the stable instance.

use super::{
    available, client_token, create_tags, created_id, described, filters, made, made_fields,
    not_in_place, observed, physical, sdk_tags, tag_map, tag_spec, Ec2Kind,
};
use crate::fields::delete_by;
use crate::fields::{answer, int, reported, sent, sorted_strs, Reader};
use crate::{Created, Cx, Query, Update};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, Instance as SdkInstance,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceStateName, InstanceType,
    LaunchTemplate as SdkLaunchTemplate, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateSpecification, LaunchTemplateVersion, RequestLaunchTemplateData, ResourceType,
    VolumeType,
};
use moodlestack_model::{
    value::sha256_hex, CloudError, Fields, Kind, Lifecycle, Observed, Scope, Value,
};
use std::collections::BTreeMap;

/// Tag holding the SHA-256 of the launch template data (the fields other than name and tags).
pub const TAG_CONTENT_HASH: &str = "moodlestack:content-hash";

/// The launch template fields that make up its data (a change writes a new version).
const DATA_FIELDS: [&str; 10] = [
    "image_id",
    "instance_type",
    "instance_profile_arn",
    "security_group_ids",
    "user_data",
    "http_tokens",
    "root_device_name",
    "root_volume_size",
    "root_volume_type",
    "root_volume_encrypted",
];

/// SHA-256 of the data fields (canonical JSON: keys sorted, ids sorted).
pub(crate) fn content_hash(fields: &Fields) -> String {
    let data: BTreeMap<&str, serde_json::Value> = DATA_FIELDS
        .iter()
        .filter_map(|k| {
            let v = match fields.get(*k)? {
                Value::List(l) => {
                    let mut items: Vec<serde_json::Value> = l.iter().map(Value::to_json).collect();
                    items.sort_by_key(|v| v.to_string());
                    serde_json::Value::Array(items)
                }
                other => other.to_json(),
            };
            Some((*k, v))
        })
        .collect();
    sha256_hex(serde_json::to_string(&data).unwrap_or_default().as_bytes())
}

/// The LaunchTemplateData of the fields: always the full data.
fn template_data(r: &Reader<'_>) -> Result<RequestLaunchTemplateData, CloudError> {
    let mut d = RequestLaunchTemplateData::builder()
        .image_id(r.str("image_id")?)
        .instance_type(InstanceType::from(r.str("instance_type")?))
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .arn(r.str("instance_profile_arn")?)
                .build(),
        )
        .set_security_group_ids(Some(r.strs("security_group_ids")?))
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::from(r.str("http_tokens")?))
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(r.str("root_device_name")?)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(r.int32("root_volume_size")?)
                        .volume_type(VolumeType::from(r.str("root_volume_type")?))
                        .encrypted(r.bool("root_volume_encrypted")?)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        );
    if let Some(ud) = r.opt_str("user_data") {
        d = d.user_data(moodlestack_model::user_data::encode(ud));
    }
    Ok(d.build())
}

/// The data of a version as fields.
fn data_fields(v: &LaunchTemplateVersion) -> Fields {
    let Some(d) = v.launch_template_data() else {
        return Fields::new();
    };
    let user_data = d.user_data().map(|x| {
        Value::Str(moodlestack_model::user_data::decode(x).unwrap_or_else(|| x.to_string()))
    });
    let root = d
        .block_device_mappings()
        .iter()
        .find_map(|m| Some((m, m.ebs()?)));
    let (device, ebs) = (root.map(|(m, _)| m), root.map(|(_, ebs)| ebs));
    reported([
        ("image_id", d.image_id().map(Value::str)),
        (
            "instance_type",
            d.instance_type().map(|x| Value::str(x.as_str())),
        ),
        (
            "instance_profile_arn",
            d.iam_instance_profile()
                .and_then(|p| p.arn())
                .map(Value::str),
        ),
        (
            "security_group_ids",
            Some(sorted_strs(d.security_group_ids().iter().cloned())),
        ),
        ("user_data", user_data),
        (
            "http_tokens",
            d.metadata_options()
                .and_then(|m| m.http_tokens())
                .map(|x| Value::str(x.as_str())),
        ),
        (
            "root_device_name",
            device.and_then(|m| m.device_name()).map(Value::str),
        ),
        (
            "root_volume_size",
            ebs.and_then(|e| e.volume_size()).map(int),
        ),
        (
            "root_volume_type",
            ebs.and_then(|e| e.volume_type())
                .map(|x| Value::str(x.as_str())),
        ),
        (
            "root_volume_encrypted",
            ebs.and_then(|e| e.encrypted()).map(Value::Bool),
        ),
    ])
}

/// A template as observed: its default version's data. `version` is the latest version (the
/// default one too: an update makes its new version the default).
fn template_observed(
    t: &SdkLaunchTemplate,
    default: Option<&LaunchTemplateVersion>,
) -> Option<Observed> {
    let id = t.launch_template_id()?;
    let name = t.launch_template_name().unwrap_or_default();
    let mut fields = default.map(data_fields).unwrap_or_default();
    fields.insert("name".into(), Value::str(name));
    let version = t.latest_version_number();
    Some(template(id, tag_map(t.tags()), fields, name, version))
}

/// A template as observed or as created: usable once it exists, its name and its latest
/// version (when AWS reports it) among its attrs.
fn template(
    id: &str,
    tags: BTreeMap<String, String>,
    fields: Fields,
    name: &str,
    version: Option<i64>,
) -> Observed {
    let mut o = available(Kind::LaunchTemplate, id, tags, fields);
    o.attrs.insert("name".into(), name.to_string());
    o.attrs
        .extend(version.map(|v| ("version".to_string(), v.to_string())));
    o
}

fn template_tags(
    scope: &Scope,
    id: &impl std::fmt::Display,
    r: &Reader<'_>,
) -> Result<BTreeMap<String, String>, CloudError> {
    let mut tags = create_tags(scope, id, r)?;
    tags.insert(TAG_CONTENT_HASH.to_string(), content_hash(r.fields));
    Ok(tags)
}

// ------------------------------------------------------------------------------- the instance

/// A change of the data writes a new version with the full data (never SourceVersion) and makes
/// it the default; the tags (with the new content hash) are rewritten.
async fn update_template(
    cx: &Cx<'_>,
    current: &Observed,
    r: &Reader<'_>,
    changed: &[&str],
) -> Result<Observed, CloudError> {
    if let Some(f) = changed
        .iter()
        .find(|f| !DATA_FIELDS.contains(f) && **f != "tags")
    {
        return Err(not_in_place(r, f));
    }
    let (c, scope) = (cx.c, cx.scope);
    let lt_id = current.physical_id.as_str();
    let mut out = current.clone();
    if changed.iter().any(|f| DATA_FIELDS.contains(f)) {
        // The token covers the data and the version it replaces: a retry after a lost answer
        // returns the version the first call made; going back to earlier data makes a new one.
        let base = current.attrs.get("version");
        let salt = format!("version {}", base.map_or("", String::as_str));
        let number = created_id(
            "ec2:CreateLaunchTemplateVersion",
            c.ec2
                .create_launch_template_version()
                .launch_template_id(lt_id)
                .launch_template_data(template_data(r)?)
                .client_token(client_token(scope, &current.id, r.fields, &salt))
                .send(),
            "version",
            |v| Some(v.launch_template_version()?.version_number()?.to_string()),
        )
        .await?;
        let req = c
            .ec2
            .modify_launch_template()
            .launch_template_id(lt_id)
            .default_version(&number);
        sent("ec2:ModifyLaunchTemplate", req.send()).await?;
        out.attrs.insert("version".into(), number);
    }
    let tags = template_tags(scope, &current.id, r)?;
    let req = c
        .ec2
        .create_tags()
        .resources(lt_id)
        .set_tags(Some(sdk_tags(&tags)));
    sent("ec2:CreateTags", req.send()).await?;
    for f in changed {
        if let Some(v) = r.fields.get(*f) {
            out.fields.insert(f.to_string(), v.clone());
        }
    }
    let mut all_tags = match out.fields.get("tags") {
        Some(Value::Map(m)) => m.clone(),
        _ => BTreeMap::new(),
    };
    all_tags.extend(tags.into_iter().map(|(k, v)| (k, Value::Str(v))));
    out.fields.insert("tags".into(), Value::Map(all_tags));
    Ok(out)
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{Instance, LaunchTemplate};
}

/// `AWS::EC2::LaunchTemplate`, keyed by its name.
pub(crate) struct LaunchTemplate;

#[async_trait]
impl Ec2Kind for LaunchTemplate {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let c = cx.c;
        let filters = filters(cx.scope, q);
        let req = c
            .ec2
            .describe_launch_templates()
            .set_filters((!filters.is_empty()).then_some(filters))
            .set_launch_template_ids(physical(q))
            .max_results(200);
        // The default versions' data: one call for every template of the account when observing
        // the stack (the API's batch form), else the one template's; beside the templates' read
        // when the call needs nothing from it (the stack, or a poll by id: one round, not two).
        let versions = || {
            c.ec2
                .describe_launch_template_versions()
                .versions("$Default")
                .max_results(200)
        };
        let early = async {
            let req = match q {
                Query::Stack => versions(),
                Query::Physical(id) => versions().launch_template_id(id),
                _ => return None,
            };
            Some(described!("ec2:DescribeLaunchTemplateVersions", req).await)
        };
        let (templates, early) =
            tokio::join!(described!("ec2:DescribeLaunchTemplates", req), early);
        let templates: Vec<SdkLaunchTemplate> = templates?;
        if templates.is_empty() {
            return Ok(Vec::new());
        }
        let found = match early {
            Some(Ok(found)) => found,
            Some(Err(e)) if !matches!(q, Query::Physical(_)) => return Err(e),
            // By id, the template listed and its versions not yet (EC2 lags); or by logical id:
            // the one template found, or every template's.
            _ => {
                let req = match templates.as_slice() {
                    [t] => versions()
                        .set_launch_template_id(t.launch_template_id().map(str::to_string)),
                    _ => versions(),
                };
                described!("ec2:DescribeLaunchTemplateVersions", req).await?
            }
        };
        let versions: BTreeMap<String, LaunchTemplateVersion> = found
            .into_iter()
            .filter_map(|v| Some((v.launch_template_id()?.to_string(), v)))
            .collect();
        Ok(templates
            .iter()
            .filter_map(|t| {
                template_observed(t, t.launch_template_id().and_then(|id| versions.get(id)))
            })
            .collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let (c, scope, id) = (cx.c, cx.scope, &r.id);
        let tags = template_tags(scope, id, r)?;
        let name = r.str("name")?;
        let out = answer(
            "ec2:CreateLaunchTemplate",
            c.ec2
                .create_launch_template()
                .launch_template_name(name)
                .launch_template_data(template_data(r)?)
                .client_token(client_token(scope, id, r.fields, ""))
                .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &tags))
                .send(),
        )
        .await;
        let out = match out {
            Ok(out) => out,
            // The name is taken: the generic code adopts the template if it is this resource of the
            // stack.
            Err(CloudError::Api { code, .. })
                if code.starts_with("InvalidLaunchTemplateName.AlreadyExists") =>
            {
                return Ok(Created::Exists)
            }
            Err(e) => return Err(e),
        };
        let (t, lt_id) = made(
            "ec2:CreateLaunchTemplate",
            "template",
            out.launch_template(),
            |t| t.launch_template_id(),
        )?;
        let version = Some(t.latest_version_number().unwrap_or(1));
        let o = template(lt_id, tags, made_fields(r), name, version);
        Ok(Created::New(o))
    }

    /// A new version also rewrites the template's tags (content hash).
    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        update_template(cx, current, r, changed).await
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:DeleteLaunchTemplate":
            cx.c.ec2.delete_launch_template().launch_template_id(current))
    }
}

// ------------------------------------------------------------------------------- the instance

fn instance_lifecycle(s: Option<&InstanceStateName>) -> Lifecycle {
    match s {
        Some(InstanceStateName::Pending) | None => Lifecycle::Creating,
        Some(InstanceStateName::Running) => Lifecycle::Ready,
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => {
            Lifecycle::Deleting
        }
        // Stopping or stopped: it will not become running by itself.
        Some(_) => Lifecycle::Failed,
    }
}

/// An instance as observed; None for instances of an Auto Scaling group (they carry the group's
/// propagated tags but are no resource of the stack's own: autoscaling owns them) and for
/// terminated ones (visible for a while after they are gone for good).
fn instance_observed(i: &SdkInstance) -> Option<Observed> {
    let id = i.instance_id()?;
    let state = i.state().and_then(|s| s.name());
    if state == Some(&InstanceStateName::Terminated) {
        return None;
    }
    let tags = tag_map(i.tags());
    if tags.contains_key("aws:autoscaling:groupName") {
        return None;
    }
    // AWS tags an instance launched from a template with the template's id and version.
    let template_tag = |k: &str| tags.get(k).map(Value::str);
    let fields = reported([
        (
            "launch_template_id",
            template_tag("aws:ec2launchtemplate:id"),
        ),
        (
            "launch_template_version",
            template_tag("aws:ec2launchtemplate:version"),
        ),
        ("subnet_id", i.subnet_id().map(Value::str)),
        (
            "instance_profile_arn",
            i.iam_instance_profile()
                .and_then(|p| p.arn())
                .map(Value::str),
        ),
        (
            "http_tokens",
            i.metadata_options()
                .and_then(|m| m.http_tokens())
                .map(|v| Value::str(v.as_str())),
        ),
    ]);
    let mut attrs = BTreeMap::new();
    if let Some(ip) = i.private_ip_address() {
        attrs.insert("private_ip".to_string(), ip.to_string());
    }
    let status = state.map(|s| s.as_str()).unwrap_or_default();
    Some(observed(
        Kind::Instance,
        id,
        tags,
        fields,
        attrs,
        status,
        instance_lifecycle(state),
    ))
}

/// `AWS::EC2::Instance`: the stable On-Demand instance.
pub(crate) struct Instance;

#[async_trait]
impl Ec2Kind for Instance {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let filters = filters(cx.scope, q);
        let req =
            cx.c.ec2
                .describe_instances()
                .set_filters((!filters.is_empty()).then_some(filters))
                .set_instance_ids(physical(q));
        let found = described!("ec2:DescribeInstances", req).await?;
        Ok(found
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(instance_observed)
            .collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let (c, scope, id) = (cx.c, cx.scope, &r.id);
        let tags = create_tags(scope, id, r)?;
        let mut salt = String::new();
        loop {
            let out = answer(
                "ec2:RunInstances",
                c.ec2
                    .run_instances()
                    .min_count(1)
                    .max_count(1)
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id(r.str("launch_template_id")?)
                            .version(r.str("launch_template_version")?)
                            .build(),
                    )
                    .subnet_id(r.str("subnet_id")?)
                    .iam_instance_profile(
                        IamInstanceProfileSpecification::builder()
                            .arn(r.str("instance_profile_arn")?)
                            .build(),
                    )
                    .metadata_options(
                        InstanceMetadataOptionsRequest::builder()
                            .http_tokens(HttpTokensState::from(r.str("http_tokens")?))
                            .http_endpoint(InstanceMetadataEndpointState::Enabled)
                            .build(),
                    )
                    .tag_specifications(tag_spec(ResourceType::Instance, &tags))
                    .tag_specifications(tag_spec(ResourceType::Volume, &tags))
                    .client_token(client_token(scope, id, r.fields, &salt))
                    .send(),
            )
            .await?;
            let (i, instance_id) = made(
                "ec2:RunInstances",
                "instance",
                out.instances().first(),
                |i| i.instance_id(),
            )?;
            let state = i.state().and_then(|s| s.name());
            let status = state.map(|s| s.as_str()).unwrap_or("pending");
            // The token of an earlier instance with the same fields that was terminated since
            // returns that instance: derive a new token from it (a rerun derives the same one).
            if instance_lifecycle(state) == Lifecycle::Deleting && salt.len() < 400 {
                salt.push_str(instance_id);
                continue;
            }
            let fields = made_fields(r);
            let mut attrs = BTreeMap::new();
            if let Some(ip) = i.private_ip_address() {
                attrs.insert("private_ip".to_string(), ip.to_string());
            }
            return Ok(Created::New(observed(
                Kind::Instance,
                instance_id,
                tags,
                fields,
                attrs,
                status,
                instance_lifecycle(state),
            )));
        }
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:TerminateInstances":
            cx.c.ec2.terminate_instances().instance_ids(current))
    }

    // Goes through `shutting-down` before it is `terminated`.
    fn gone_when_deleted(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_ignores_name_tags_and_id_order() {
        let a: Fields = [
            ("name".to_string(), Value::str("demo-web")),
            ("image_id".to_string(), Value::str("ami-1")),
            (
                "security_group_ids".to_string(),
                Value::strs(["sg-2", "sg-1"]),
            ),
        ]
        .into();
        let mut b = a.clone();
        b.insert("name".into(), Value::str("other"));
        b.insert("security_group_ids".into(), Value::strs(["sg-1", "sg-2"]));
        b.insert("tags".into(), crate::fields::tags_value([("k", "v")]));
        assert_eq!(content_hash(&a), content_hash(&b));
        b.insert("user_data".into(), Value::str("#!/bin/sh"));
        assert_ne!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a).len(), 64);
    }

    #[test]
    fn a_launch_template_is_observed_with_its_default_versions_data() {
        use crate::ec2::check::{observation, tags};
        use aws_sdk_ec2::types::{
            LaunchTemplateBlockDeviceMapping, LaunchTemplateEbsBlockDevice,
            LaunchTemplateIamInstanceProfileSpecification, LaunchTemplateInstanceMetadataOptions,
            ResponseLaunchTemplateData,
        };
        let t = SdkLaunchTemplate::builder()
            .launch_template_id("lt-1")
            .launch_template_name("demo-web")
            .latest_version_number(2)
            .default_version_number(2)
            .set_tags(Some(tags("web.lt")))
            .build();
        let data = ResponseLaunchTemplateData::builder()
            .image_id("ami-1")
            .instance_type(InstanceType::T3Small)
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecification::builder()
                    .arn("arn:aws:iam::123456789012:instance-profile/web")
                    .build(),
            )
            .security_group_ids("sg-1")
            .user_data(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "#!/bin/sh\n",
            ))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptions::builder()
                    .http_tokens(LaunchTemplateHttpTokensState::Required)
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        LaunchTemplateEbsBlockDevice::builder()
                            .volume_size(30)
                            .volume_type(VolumeType::Gp3)
                            .encrypted(true)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let v = LaunchTemplateVersion::builder()
            .launch_template_id("lt-1")
            .version_number(2)
            .launch_template_data(data)
            .build();
        let o = template_observed(&t, Some(&v)).unwrap();
        observation(&o, &[], Lifecycle::Ready, "web.lt");
        assert_eq!(o.attrs["version"], "2");
        assert_eq!(o.fields["user_data"], Value::str("#!/bin/sh\n"));
    }

    #[test]
    fn an_instance_is_observed_with_its_lifecycle_and_asg_and_terminated_ones_are_not() {
        use crate::ec2::check::{observation, tags};
        use aws_sdk_ec2::types::{
            IamInstanceProfile, InstanceMetadataOptionsResponse, InstanceState, Tag,
        };
        let instance = |state: InstanceStateName, extra: Option<(&str, &str)>| {
            let mut t = tags("stable.instance");
            t.push(
                Tag::builder()
                    .key("aws:ec2launchtemplate:id")
                    .value("lt-1")
                    .build(),
            );
            t.push(
                Tag::builder()
                    .key("aws:ec2launchtemplate:version")
                    .value("2")
                    .build(),
            );
            if let Some((k, v)) = extra {
                t.push(Tag::builder().key(k).value(v).build());
            }
            SdkInstance::builder()
                .instance_id("i-1")
                .subnet_id("subnet-1")
                .private_ip_address("10.0.1.5")
                .iam_instance_profile(
                    IamInstanceProfile::builder()
                        .arn("arn:aws:iam::123456789012:instance-profile/web")
                        .build(),
                )
                .metadata_options(
                    InstanceMetadataOptionsResponse::builder()
                        .http_tokens(HttpTokensState::Required)
                        .build(),
                )
                .state(InstanceState::builder().name(state).build())
                .set_tags(Some(t))
                .build()
        };
        let o = instance_observed(&instance(InstanceStateName::Pending, None)).unwrap();
        observation(&o, &[], Lifecycle::Creating, "stable.instance");
        assert_eq!(o.attrs["private_ip"], "10.0.1.5");
        let running = instance_observed(&instance(InstanceStateName::Running, None)).unwrap();
        assert_eq!(running.lifecycle, Lifecycle::Ready);
        let stopped = instance_observed(&instance(InstanceStateName::Stopped, None)).unwrap();
        assert_eq!(stopped.lifecycle, Lifecycle::Failed);
        let going = instance_observed(&instance(InstanceStateName::ShuttingDown, None)).unwrap();
        assert_eq!(going.lifecycle, Lifecycle::Deleting);
        assert!(instance_observed(&instance(InstanceStateName::Terminated, None)).is_none());
        let asg = instance(
            InstanceStateName::Running,
            Some(("aws:autoscaling:groupName", "demo-web")),
        );
        assert!(instance_observed(&asg).is_none());
    }
}
