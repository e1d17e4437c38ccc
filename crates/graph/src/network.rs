//! An existing network (`network.existing`) checked against what the cloud says about it, at
//! plan time, before anything is changed.
//!
//! The rules follow from what the graph builds there: every node mounts EFS by its DNS name
//! (the VPC's DNS server must answer, and instances must get DNS hostnames), one EFS mount target
//! per private subnet (EFS allows one per zone: a second one in a zone fails with
//! `MountTargetConflict`), the database and cache subnet groups over the private subnets, and
//! the ALB over the public subnets (one subnet per zone, at least two zones). Each problem is
//! reported at the field of the stack file (or `--set` argument) that names the VPC or subnet,
//! with the command that fixes it.

use moodlestack_model::{NetworkInfo, SubnetInfo};
use moodlestack_stack::{Diagnostic, LoadError, Loaded};
use std::collections::BTreeMap;

/// Checks `network.existing` of `loaded` against `found` (what [`moodlestack_model::Cloud::network`]
/// answered for its VPC and subnet ids): the VPC exists and has DNS support and DNS hostnames
/// on; every subnet exists and is in that VPC; the private subnets are in distinct zones, and so
/// are the public ones. With at least two subnet ids in each list (a rule of the stack file),
/// distinct zones means at least two. A stack without `network.existing` passes.
pub fn check_existing_network(loaded: &Loaded, found: &NetworkInfo) -> Result<(), LoadError> {
    let diagnostics = existing_network_problems(loaded, found);
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(LoadError {
            diagnostics,
            sources: loaded.sources.clone(),
        })
    }
}

/// The problems [`check_existing_network`] reports, in the order of the stack's fields.
pub fn existing_network_problems(loaded: &Loaded, found: &NetworkInfo) -> Vec<Diagnostic> {
    let Some(ex) = &loaded.stack.network.existing else {
        return Vec::new();
    };
    let region = &loaded.stack.region;
    let vpc_id = &ex.vpc_id;
    let mut out = Vec::new();
    let mut report = |path: String, message: String, fix: String| {
        let mut d = Diagnostic::error(
            format!("`{path}`: {message}"),
            loaded.paths.locate(&path),
            fix,
        );
        d.paths.push(path);
        out.push(d);
    };

    let vpc_path = "network.existing.vpc_id".to_string();
    match &found.vpc {
        None => report(
            vpc_path,
            format!("VPC `{vpc_id}` does not exist in {region}"),
            format!(
                "write the id of a VPC of this account in {region} (`aws ec2 describe-vpcs \
                 --region {region} --query 'Vpcs[].[VpcId,CidrBlock]'`), or remove \
                 `network.existing` to let moodlestack create the network"
            ),
        ),
        Some(vpc) => {
            let modify = |attribute: &str| {
                format!(
                    "`aws ec2 modify-vpc-attribute --region {region} --vpc-id {vpc_id} \
                     --{attribute} '{{\"Value\":true}}'`"
                )
            };
            if !vpc.enable_dns_support {
                report(
                    vpc_path.clone(),
                    format!(
                        "VPC `{vpc_id}` has enableDnsSupport off; the nodes mount EFS and reach \
                         the database and Redis by DNS name, which needs the VPC's DNS server"
                    ),
                    format!("turn it on: {}", modify("enable-dns-support")),
                );
            }
            if !vpc.enable_dns_hostnames {
                let when = if vpc.enable_dns_support {
                    ""
                } else {
                    ", after enableDnsSupport"
                };
                report(
                    vpc_path,
                    format!(
                        "VPC `{vpc_id}` has enableDnsHostnames off; the nodes mount EFS by its \
                         DNS name, which needs it (without it every node's user-data gives up \
                         after about 300 s)"
                    ),
                    format!("turn it on{when}: {}", modify("enable-dns-hostnames")),
                );
            }
        }
    }

    let by_id: BTreeMap<&str, &SubnetInfo> = found
        .subnets
        .iter()
        .map(|s| (s.subnet_id.as_str(), s))
        .collect();
    let list_subnets = format!(
        "`aws ec2 describe-subnets --region {region} --filters Name=vpc-id,Values={vpc_id} \
         --query 'Subnets[].[SubnetId,AvailabilityZone,CidrBlock]'`"
    );
    for (field, ids, what, why) in [
        (
            "public_subnet_ids",
            &ex.public_subnet_ids,
            "public",
            "the ALB takes one subnet per zone and needs subnets in at least 2 zones",
        ),
        (
            "private_subnet_ids",
            &ex.private_subnet_ids,
            "private",
            "EFS takes one mount target per zone, so the second CreateMountTarget in a zone \
             fails with MountTargetConflict",
        ),
    ] {
        // Removing a subnet is a fix only while 2 remain (a rule of the stack file).
        let or_remove = if ids.len() > 2 { ", or remove it" } else { "" };
        // Zone -> the first subnet of this list in it (only subnets that exist in the VPC).
        let mut zones: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (i, id) in ids.iter().enumerate() {
            let path = format!("network.existing.{field}[{i}]");
            let Some(subnet) = by_id.get(id.as_str()) else {
                report(
                    path,
                    format!("subnet `{id}` does not exist in {region}"),
                    format!("write the id of a {what} subnet of `{vpc_id}` ({list_subnets})"),
                );
                continue;
            };
            if found.vpc.is_some() && subnet.vpc_id != *vpc_id {
                report(
                    path,
                    format!(
                        "subnet `{id}` is in VPC `{}`, not in `{vpc_id}` \
                         (`network.existing.vpc_id`)",
                        subnet.vpc_id
                    ),
                    format!(
                        "list subnets of `{vpc_id}` only ({list_subnets}), or set \
                         `network.existing.vpc_id` to the VPC the subnets are in"
                    ),
                );
                continue;
            }
            let zone = subnet.availability_zone.as_str();
            match zones.get(zone) {
                Some(&(first, first_id)) => report(
                    path,
                    format!(
                        "subnet `{id}` is in {zone}, like `{first_id}` (`{field}[{first}]`); \
                         {why}"
                    ),
                    format!(
                        "list one {what} subnet per availability zone: replace `{id}` with a \
                         {what} subnet of `{vpc_id}` in another zone{or_remove} ({list_subnets})"
                    ),
                ),
                None => {
                    zones.insert(zone, (i, id));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodlestack_model::VpcInfo;
    use moodlestack_stack::{load_str, LoadOptions};

    const STACK: &str = "\
name: school
region: eu-west-1
network:
  existing:
    vpc_id: vpc-0a1b2c3d
    public_subnet_ids: [subnet-pub00001, subnet-pub00002]
    private_subnet_ids:
      - subnet-prv00001
      - subnet-prv00002
database: {}
load_balancer: {}
moodle:
  wwwroot: http://moodle.school.example
  admin_email: admin@school.example
";

    fn loaded(text: &str) -> Loaded {
        load_str("school.yaml", text, &LoadOptions::default()).unwrap()
    }

    fn vpc(support: bool, hostnames: bool) -> Option<VpcInfo> {
        Some(VpcInfo {
            vpc_id: "vpc-0a1b2c3d".into(),
            enable_dns_support: support,
            enable_dns_hostnames: hostnames,
        })
    }

    fn subnet(id: &str, vpc: &str, zone: &str) -> SubnetInfo {
        SubnetInfo {
            subnet_id: id.into(),
            vpc_id: vpc.into(),
            availability_zone: zone.into(),
        }
    }

    /// The four subnets of [`STACK`], each in its own place in the VPC.
    /// The stack's VPC (DNS support and hostnames on) with `subnets`.
    fn in_the_vpc(subnets: Vec<SubnetInfo>) -> NetworkInfo {
        NetworkInfo {
            vpc: vpc(true, true),
            subnets,
        }
    }

    fn good_subnets() -> Vec<SubnetInfo> {
        vec![
            subnet("subnet-pub00001", "vpc-0a1b2c3d", "eu-west-1a"),
            subnet("subnet-pub00002", "vpc-0a1b2c3d", "eu-west-1b"),
            subnet("subnet-prv00001", "vpc-0a1b2c3d", "eu-west-1a"),
            subnet("subnet-prv00002", "vpc-0a1b2c3d", "eu-west-1b"),
        ]
    }

    /// (message, location) of every problem.
    fn problems(found: &NetworkInfo) -> Vec<(String, String)> {
        let l = loaded(STACK);
        existing_network_problems(&l, found)
            .iter()
            .map(|d| (d.message.clone(), d.location(&l.sources)))
            .collect()
    }

    fn pair(message: &str, location: &str) -> (String, String) {
        (message.to_string(), location.to_string())
    }

    #[test]
    fn a_good_network_passes_and_a_stack_without_one_is_not_checked() {
        let l = loaded(STACK);
        let found = in_the_vpc(good_subnets());
        assert!(check_existing_network(&l, &found).is_ok());
        // Public and private subnets may share zones; that is the usual layout.
        let without = STACK.replace(
            "network:\n  existing:\n    vpc_id: vpc-0a1b2c3d\n    public_subnet_ids: [subnet-pub00001, subnet-pub00002]\n    private_subnet_ids:\n      - subnet-prv00001\n      - subnet-prv00002\n",
            "",
        );
        assert!(check_existing_network(&loaded(&without), &NetworkInfo::default()).is_ok());
    }

    #[test]
    fn dns_attributes_must_be_on_with_the_command_that_turns_them_on() {
        let l = loaded(STACK);
        let found = NetworkInfo {
            vpc: vpc(true, false),
            subnets: good_subnets(),
        };
        let err = check_existing_network(&l, &found).unwrap_err();
        assert_eq!(err.diagnostics.len(), 1);
        let d = &err.diagnostics[0];
        assert_eq!(d.location(&err.sources), "school.yaml:5:13");
        assert_eq!(
            d.message,
            "`network.existing.vpc_id`: VPC `vpc-0a1b2c3d` has enableDnsHostnames off; the nodes \
             mount EFS by its DNS name, which needs it (without it every node's user-data gives \
             up after about 300 s)"
        );
        assert_eq!(
            d.fix,
            "turn it on: `aws ec2 modify-vpc-attribute --region eu-west-1 --vpc-id vpc-0a1b2c3d \
             --enable-dns-hostnames '{\"Value\":true}'`"
        );
        assert_eq!(d.paths, vec!["network.existing.vpc_id".to_string()]);

        // Both off: support first, and hostnames can only follow it.
        let found = NetworkInfo {
            vpc: vpc(false, false),
            subnets: good_subnets(),
        };
        let ds = existing_network_problems(&l, &found);
        let fixes: Vec<&str> = ds.iter().map(|d| d.fix.as_str()).collect();
        assert_eq!(
            fixes,
            vec![
                "turn it on: `aws ec2 modify-vpc-attribute --region eu-west-1 --vpc-id \
                 vpc-0a1b2c3d --enable-dns-support '{\"Value\":true}'`",
                "turn it on, after enableDnsSupport: `aws ec2 modify-vpc-attribute --region \
                 eu-west-1 --vpc-id vpc-0a1b2c3d --enable-dns-hostnames '{\"Value\":true}'`",
            ]
        );
        assert!(
            ds[0].message.contains("has enableDnsSupport off"),
            "{}",
            ds[0].message
        );
    }

    #[test]
    fn a_missing_vpc_is_reported_once_not_with_every_subnet() {
        let found = NetworkInfo {
            vpc: None,
            subnets: good_subnets()
                .into_iter()
                .map(|s| SubnetInfo {
                    vpc_id: "vpc-elsewhere".into(),
                    ..s
                })
                .collect(),
        };
        assert_eq!(
            problems(&found),
            vec![pair(
                "`network.existing.vpc_id`: VPC `vpc-0a1b2c3d` does not exist in eu-west-1",
                "school.yaml:5:13"
            )]
        );
    }

    #[test]
    fn subnets_must_exist_and_be_in_the_vpc() {
        let mut subnets = good_subnets();
        subnets.retain(|s| s.subnet_id != "subnet-pub00002");
        subnets[2].vpc_id = "vpc-99999999".into();
        let found = in_the_vpc(subnets);
        assert_eq!(
            problems(&found),
            vec![
                pair(
                    "`network.existing.public_subnet_ids[1]`: subnet `subnet-pub00002` does not \
                     exist in eu-west-1",
                    "school.yaml:6:42"
                ),
                pair(
                    "`network.existing.private_subnet_ids[1]`: subnet `subnet-prv00002` is in \
                     VPC `vpc-99999999`, not in `vpc-0a1b2c3d` (`network.existing.vpc_id`)",
                    "school.yaml:9:9"
                ),
            ]
        );
        let l = loaded(STACK);
        let ds = existing_network_problems(&l, &found);
        assert!(
            ds[0].fix.starts_with(
                "write the id of a public subnet of `vpc-0a1b2c3d` (`aws ec2 describe-subnets \
                 --region eu-west-1 --filters Name=vpc-id,Values=vpc-0a1b2c3d"
            ),
            "{}",
            ds[0].fix
        );
    }

    #[test]
    fn private_subnets_and_public_subnets_each_take_one_zone() {
        let mut subnets = good_subnets();
        for s in &mut subnets {
            s.availability_zone = "eu-west-1c".into();
        }
        let found = in_the_vpc(subnets);
        assert_eq!(
            problems(&found),
            vec![
                // Two public subnets in one zone: the ALB would span one zone only.
                pair(
                    "`network.existing.public_subnet_ids[1]`: subnet `subnet-pub00002` is in \
                     eu-west-1c, like `subnet-pub00001` (`public_subnet_ids[0]`); the ALB takes \
                     one subnet per zone and needs subnets in at least 2 zones",
                    "school.yaml:6:42"
                ),
                pair(
                    "`network.existing.private_subnet_ids[1]`: subnet `subnet-prv00002` is in \
                     eu-west-1c, like `subnet-prv00001` (`private_subnet_ids[0]`); EFS takes one \
                     mount target per zone, so the second CreateMountTarget in a zone fails with \
                     MountTargetConflict",
                    "school.yaml:9:9"
                ),
            ]
        );
    }

    #[test]
    fn a_third_subnet_in_a_taken_zone_may_be_removed() {
        let three = STACK.replace(
            "      - subnet-prv00002\n",
            "      - subnet-prv00002\n      - subnet-prv00003\n",
        );
        let l = loaded(&three);
        let mut subnets = good_subnets();
        subnets.push(subnet("subnet-prv00003", "vpc-0a1b2c3d", "eu-west-1b"));
        let found = in_the_vpc(subnets);
        let ds = existing_network_problems(&l, &found);
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].location(&l.sources), "school.yaml:10:9");
        assert!(
            ds[0]
                .message
                .contains("like `subnet-prv00002` (`private_subnet_ids[1]`)"),
            "{}",
            ds[0].message
        );
        assert!(
            ds[0].fix.starts_with(
                "list one private subnet per availability zone: replace `subnet-prv00003` with \
                 a private subnet of `vpc-0a1b2c3d` in another zone, or remove it (`aws ec2"
            ),
            "{}",
            ds[0].fix
        );
        // With two, removing one is no fix.
        let mut subnets = good_subnets();
        subnets[3].availability_zone = "eu-west-1a".into();
        let found = in_the_vpc(subnets);
        let ds = existing_network_problems(&loaded(STACK), &found);
        assert!(!ds[0].fix.contains("remove it"), "{}", ds[0].fix);
    }

    #[test]
    fn a_set_argument_is_pointed_at() {
        let options = LoadOptions {
            name: None,
            set: vec!["network.existing.private_subnet_ids[1]=subnet-nothere1".into()],
        };
        let l = load_str("school.yaml", STACK, &options).unwrap();
        let found = in_the_vpc(good_subnets());
        let ds = existing_network_problems(&l, &found);
        assert_eq!(ds.len(), 1);
        assert_eq!(
            ds[0].location(&l.sources),
            "argument `--set network.existing.private_subnet_ids[1]=subnet-nothere1` (column 46)"
        );
    }
}
