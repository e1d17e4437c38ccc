#!/usr/bin/env python3
"""Self-test of the emulator's AWS-behaviour layer (localstack/behaviours.py) and of the fault
proxy (localstack/faults.py): each test starts the real emulator (localstack/moto_server.py) on a
free port of 127.0.0.1 with one selection of behaviours, drives it with boto3 and stops it.

    ~/.cache/moodlestack/moto-venv/bin/python localstack/test_behaviours.py [-v] [TestName...]

Ends with one line in cargo's `test result:` format (scripts/test sums those lines).
"""

import base64
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from launch import start_emulator

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "eu-west-1"
DELAY_MS = 400


class Emulator:
    def __init__(self, behaviours, delay_ms=DELAY_MS, consistency_ms=1000, extra_env=None):
        env = dict(os.environ, **(extra_env or {}), MOTO_IAM_LOAD_MANAGED_POLICIES="true",
                   MOODLESTACK_EMULATOR_BEHAVIOURS=behaviours,
                   MOODLESTACK_EMULATOR_DELAY_MS=str(delay_ms),
                   MOODLESTACK_EMULATOR_CONSISTENCY_MS=str(consistency_ms))
        self.proc, self.url = start_emulator(env)

    def client(self, service, url=None, retries=1):
        return boto3.client(service, region_name=REGION, endpoint_url=url or self.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"max_attempts": retries, "mode": "standard"}))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def code_of(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def wait_until(fn, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def create_db(rds, **kwargs):
    """Creates the MySQL instance `t-db` (db.t3.micro, master user `admin`) with `kwargs`."""
    return rds.create_db_instance(DBInstanceIdentifier="t-db", Engine="mysql", DBInstanceClass="db.t3.micro",
                                  MasterUsername="admin", **kwargs)


def db_of(rds):
    """The instance `t-db` as described."""
    return rds.describe_db_instances(DBInstanceIdentifier="t-db")["DBInstances"][0]


TAGS = [{"Key": "moodlestack:stack", "Value": "t"}, {"Key": "moodlestack:id", "Value": "db.instance"}]


def network(emu):
    ec2 = emu.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName="t-db", Description="t", VpcId=vpc)["GroupId"]
    return vpc, subnets, sg


def rds_stack(test, db_id):
    """An RDS client, the subnet group `t-db` in a new VPC, its security group, and the stack's
    tags of the resource `db_id`."""
    vpc, subnets, sg = network(test.emu)
    rds = test.rds()
    rds.create_db_subnet_group(DBSubnetGroupName="t-db", DBSubnetGroupDescription="t", SubnetIds=subnets)
    return rds, sg, [{"Key": "moodlestack:stack", "Value": "t"}, {"Key": "moodlestack:id", "Value": db_id}]


class Base(unittest.TestCase):
    BEHAVIOURS = "none"
    DELAY_MS = DELAY_MS
    CONSISTENCY_MS = 1000
    ENV = {}

    def setUp(self):
        self.emu = Emulator(self.BEHAVIOURS, self.DELAY_MS, self.CONSISTENCY_MS, self.ENV)
        self.addCleanup(self.emu.stop)

    def rds(self):
        """An RDS client, after a first call: the first RDS call loads moto's data."""
        rds = self.emu.client("rds")
        rds.describe_db_instances()
        return rds


class NoDelayTest(unittest.TestCase):
    def test_moto_answers_with_tcp_nodelay(self):
        # werkzeug writes headers and body apart: without TCP_NODELAY an answer on a kept-alive
        # connection waits 40 ms for the client's delayed ACK (README: "Where moto differs").
        code = ("import moto_server\n"
                "from moto.moto_server.werkzeug_app import MotoRequestHandler as H\n"
                "print(H.disable_nagle_algorithm)")
        env = dict(os.environ, MOODLESTACK_EMULATOR_BEHAVIOURS="none")
        out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env,
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out.strip(), "True")


class SelectionTest(unittest.TestCase):
    def test_list_names_every_behaviour_and_the_selection(self):
        env = dict(os.environ, MOODLESTACK_EMULATOR_BEHAVIOURS="none,rds-secret-tags")
        out = subprocess.run([sys.executable, os.path.join(HERE, "moto_server.py"), "--list"],
                             env=env, capture_output=True, text=True, check=True).stdout
        sys.path.insert(0, HERE)
        import behaviours
        for name in behaviours.BEHAVIOURS:
            self.assertIn(name, out)
        line = [ln for ln in out.splitlines() if ln.startswith("rds-secret-tags")][0]
        self.assertEqual(line.split()[2], "on")
        line = [ln for ln in out.splitlines() if ln.startswith("validation")][0]
        self.assertEqual(line.split()[2], "off")
        self.assertEqual(behaviours._parse_selection("all,-validation"),
                         set(behaviours.BEHAVIOURS) - {"validation"})
        self.assertEqual(behaviours._parse_selection("none"), set())

    def test_unknown_name_is_refused(self):
        env = dict(os.environ, MOODLESTACK_EMULATOR_BEHAVIOURS="no-such-thing")
        p = subprocess.run([sys.executable, os.path.join(HERE, "moto_server.py"), "--list"],
                           env=env, capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-thing", p.stderr)


class RdsSecretTagsTest(Base):
    BEHAVIOURS = "none,rds-secret-tags"

    def test_managed_secret_carries_the_db_tags_and_is_owned_by_rds(self):
        rds = self.rds()
        create_db(rds, AllocatedStorage=20, ManageMasterUserPassword=True, Tags=TAGS)
        sm = self.emu.client("secretsmanager")
        found = sm.list_secrets(Filters=[{"Key": "tag-key", "Values": ["moodlestack:stack"]},
                                         {"Key": "tag-value", "Values": ["t"]}])["SecretList"]
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["OwningService"], "rds")
        self.assertTrue(found[0]["Name"].startswith("rds!db-"))
        tags = {t["Key"]: t["Value"] for t in found[0]["Tags"]}
        self.assertEqual(tags["moodlestack:id"], "db.instance")


class RdsSecretTagsOffTest(Base):
    BEHAVIOURS = "none"

    def test_without_it_the_secret_has_only_the_rds_tag(self):
        rds = self.rds()
        create_db(rds, AllocatedStorage=20, ManageMasterUserPassword=True, Tags=TAGS)
        found = self.emu.client("secretsmanager").list_secrets(
            Filters=[{"Key": "tag-key", "Values": ["moodlestack:stack"]}])["SecretList"]
        self.assertEqual(found, [])


class RdsStorageTest(Base):
    BEHAVIOURS = "none,rds-storage-autoscaling,rds-max-storage-rule"
    DELAY_MS = 1500

    def test_max_storage_below_110_percent_is_refused(self):
        rds = self.rds()
        code = code_of(rds.create_db_instance, DBInstanceIdentifier="t-db", Engine="mysql",
                       DBInstanceClass="db.t3.micro", AllocatedStorage=100, MaxAllocatedStorage=105,
                       MasterUsername="admin", MasterUserPassword="password123")
        self.assertEqual(code, ("InvalidParameterCombination", 400))
        create_db(rds, AllocatedStorage=100, MaxAllocatedStorage=110, MasterUserPassword="password123")

    def test_storage_grows_once_on_its_own(self):
        rds = self.rds()
        create_db(rds, AllocatedStorage=200, MaxAllocatedStorage=1000, MasterUserPassword="password123")
        first = db_of(rds)
        self.assertEqual(first["AllocatedStorage"], 200)
        time.sleep(2 * self.DELAY_MS / 1000 + 0.1)
        grown = db_of(rds)
        self.assertEqual(grown["AllocatedStorage"], 220)
        time.sleep(2 * self.DELAY_MS / 1000 + 0.1)
        again = db_of(rds)
        self.assertEqual(again["AllocatedStorage"], 220, "no second growth within 6 hours")
        # turning autoscaling off with a maximum below the grown size is refused
        code = code_of(rds.modify_db_instance, DBInstanceIdentifier="t-db", MaxAllocatedStorage=200,
                       ApplyImmediately=True)
        self.assertEqual(code, ("InvalidParameterCombination", 400))

    def test_without_max_storage_nothing_grows(self):
        rds = self.rds()
        create_db(rds, AllocatedStorage=50, MasterUserPassword="password123")
        time.sleep(2 * self.DELAY_MS / 1000 + 0.1)
        db = db_of(rds)
        self.assertEqual(db["AllocatedStorage"], 50)


class RdsMinorUpgradeTest(Base):
    BEHAVIOURS = "none,rds-minor-upgrades"
    DELAY_MS = 1500

    def test_instance_and_cluster_report_a_newer_minor(self):
        rds = self.rds()
        create_db(rds, EngineVersion="8.0.39", AllocatedStorage=20, MasterUserPassword="password123")
        self.assertEqual(db_of(rds)["EngineVersion"], "8.0.39")
        rds.create_db_cluster(DBClusterIdentifier="t-aurora", Engine="aurora-mysql",
                              EngineVersion="8.0.mysql_aurora.3.08.0", MasterUsername="admin",
                              MasterUserPassword="password123")
        time.sleep(2 * self.DELAY_MS / 1000 + 0.1)
        self.assertEqual(db_of(rds)["EngineVersion"], "8.0.40")
        self.assertEqual(rds.describe_db_clusters(DBClusterIdentifier="t-aurora")["DBClusters"][0]["EngineVersion"],
                         "8.0.mysql_aurora.3.08.1")
        # A major-only Aurora version reports the minor AWS picked for it.
        rds.create_db_cluster(DBClusterIdentifier="t-aurora-default", Engine="aurora-mysql",
                              EngineVersion="8.0", MasterUsername="admin",
                              MasterUserPassword="password123")
        time.sleep(2 * self.DELAY_MS / 1000 + 0.1)
        self.assertEqual(rds.describe_db_clusters(DBClusterIdentifier="t-aurora-default")["DBClusters"][0]
                         ["EngineVersion"], "8.0.mysql_aurora.3.08.2")

    def test_no_upgrade_when_auto_minor_upgrade_is_off(self):
        rds = self.rds()
        create_db(rds, EngineVersion="8.0.39", AllocatedStorage=20, AutoMinorVersionUpgrade=False,
                  MasterUserPassword="password123")
        time.sleep(2 * self.DELAY_MS / 1000 + 0.1)
        self.assertEqual(db_of(rds)["EngineVersion"], "8.0.39")


def redis_group(emu):
    vpc, subnets, sg = network(emu)
    ec = emu.client("elasticache")
    ec.create_cache_subnet_group(CacheSubnetGroupName="t-redis", CacheSubnetGroupDescription="t",
                                 SubnetIds=subnets)
    ec.create_replication_group(ReplicationGroupId="t-redis", ReplicationGroupDescription="t",
                                Engine="redis", CacheNodeType="cache.t3.micro", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True, CacheSubnetGroupName="t-redis")
    return ec


class ElastiCacheModifyingTest(Base):
    BEHAVIOURS = "none,elasticache-modifying"

    def test_busy_group_refuses_a_second_change_and_tag_calls(self):
        ec = redis_group(self.emu)
        rg = ec.describe_replication_groups(ReplicationGroupId="t-redis")["ReplicationGroups"][0]
        self.assertEqual(rg["Status"], "available")
        ec.modify_replication_group(ReplicationGroupId="t-redis", CacheNodeType="cache.t3.small",
                                    ApplyImmediately=True)
        rg = ec.describe_replication_groups(ReplicationGroupId="t-redis")["ReplicationGroups"][0]
        self.assertEqual(rg["Status"], "modifying")
        arn = rg["ARN"]
        self.assertEqual(code_of(ec.increase_replica_count, ReplicationGroupId="t-redis", NewReplicaCount=2,
                                 ApplyImmediately=True)[0], "InvalidReplicationGroupState")
        self.assertEqual(code_of(ec.modify_replication_group, ReplicationGroupId="t-redis",
                                 SnapshotRetentionLimit=2, ApplyImmediately=True)[0], "InvalidReplicationGroupState")
        self.assertEqual(code_of(ec.add_tags_to_resource, ResourceName=arn,
                                 Tags=[{"Key": "a", "Value": "b"}])[0], "InvalidReplicationGroupState")
        self.assertEqual(code_of(ec.list_tags_for_resource, ResourceName=arn)[0], "InvalidReplicationGroupState")
        wait_until(lambda: ec.describe_replication_groups(ReplicationGroupId="t-redis")
                   ["ReplicationGroups"][0]["Status"] == "available")
        ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "a", "Value": "b"}])
        # tagging itself makes the group busy
        self.assertEqual(code_of(ec.increase_replica_count, ReplicationGroupId="t-redis", NewReplicaCount=2,
                                 ApplyImmediately=True)[0], "InvalidReplicationGroupState")
        wait_until(lambda: ec.describe_replication_groups(ReplicationGroupId="t-redis")
                   ["ReplicationGroups"][0]["Status"] == "available")
        ec.increase_replica_count(ReplicationGroupId="t-redis", NewReplicaCount=2, ApplyImmediately=True)


def efs_with_mount_target(emu):
    vpc, subnets, sg = network(emu)
    efs = emu.client("efs")
    fs = efs.create_file_system(CreationToken="t-fs")["FileSystemId"]
    return efs, fs, subnets, sg


class EfsMountTargetStateTest(Base):
    BEHAVIOURS = "none,efs-mount-target-state,pending-states"

    def test_security_groups_unreadable_until_available(self):
        efs, fs, subnets, sg = efs_with_mount_target(self.emu)
        self.assertEqual(efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]["LifeCycleState"], "creating")
        mt = efs.create_mount_target(FileSystemId=fs, SubnetId=subnets[0], SecurityGroups=[sg])
        self.assertEqual(mt["LifeCycleState"], "creating")
        self.assertEqual(code_of(efs.describe_mount_target_security_groups, MountTargetId=mt["MountTargetId"]),
                         ("IncorrectMountTargetState", 409))
        wait_until(lambda: efs.describe_mount_targets(MountTargetId=mt["MountTargetId"])
                   ["MountTargets"][0]["LifeCycleState"] == "available")
        got = efs.describe_mount_target_security_groups(MountTargetId=mt["MountTargetId"])["SecurityGroups"]
        self.assertEqual(got, [sg])


class PendingStatesTest(Base):
    BEHAVIOURS = "none,pending-states"

    def test_creates_pass_through_their_intermediate_states(self):
        vpc, subnets, sg = network(self.emu)
        rds = self.rds()
        db = create_db(rds, AllocatedStorage=20, MasterUserPassword="password123")["DBInstance"]
        self.assertEqual(db["DBInstanceStatus"], "creating")
        ec2 = self.emu.client("ec2")
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=eip)["NatGateway"]
        self.assertEqual(nat["State"], "pending")
        wait_until(lambda: db_of(rds)
                   ["DBInstanceStatus"] == "available")
        wait_until(lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])
                   ["NatGateways"][0]["State"] == "available")


class EventualConsistencyTest(Base):
    BEHAVIOURS = "none,eventual-consistency"
    CONSISTENCY_MS = 3000

    def test_just_created_vpc_is_not_found_for_a_moment(self):
        ec2 = self.emu.client("ec2")
        ec2.describe_vpcs()  # the first EC2 call loads moto's data
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "moodlestack:stack", "Value": "t"}]}])["Vpc"]["VpcId"]
        self.assertEqual(code_of(ec2.describe_vpcs, VpcIds=[vpc])[0], "InvalidVpcID.NotFound")
        listed = ec2.describe_vpcs(Filters=[{"Name": "tag:moodlestack:stack", "Values": ["t"]}])["Vpcs"]
        self.assertEqual(listed, [])
        time.sleep(3.05)
        self.assertEqual(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["VpcId"], vpc)


class Ec2DeletesLingerTest(Base):
    BEHAVIOURS = "none,ec2-deletes-linger"
    CONSISTENCY_MS = 2000

    def test_a_deleted_group_and_vpc_are_listed_for_a_moment(self):
        ec2 = self.emu.client("ec2")
        stack = [{"Name": "tag:moodlestack:stack", "Values": ["t"]}]
        tags = [{"Key": "moodlestack:stack", "Value": "t"}]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
        sg = ec2.create_security_group(GroupName="t-web", Description="t", VpcId=vpc,
                                       TagSpecifications=[{"ResourceType": "security-group",
                                                           "Tags": tags}])["GroupId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        ec2.delete_security_group(GroupId=sg)
        ec2.delete_subnet(SubnetId=subnet)
        # DeleteVpc's own look for subnets does not see the deleted one (it refuses a VPC with
        # subnets), but the describes still list the deleted resources, by filter with their
        # tags, by id and by name.
        ec2.delete_vpc(VpcId=vpc)
        self.assertEqual([s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]], [subnet])
        listed = ec2.describe_security_groups(Filters=stack)["SecurityGroups"]
        self.assertEqual([(g["GroupId"], g["Tags"]) for g in listed], [(sg, tags)])
        self.assertEqual(ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["GroupId"], sg)
        self.assertEqual(len(ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["t-web"]}])["SecurityGroups"]), 1)
        self.assertEqual([v["VpcId"] for v in ec2.describe_vpcs(Filters=stack)["Vpcs"]], [vpc])
        # Another filter does not select it.
        self.assertEqual(ec2.describe_vpcs(
            Filters=[{"Name": "tag:moodlestack:stack", "Values": ["other"]}])["Vpcs"], [])
        # The delete is done: a second one answers NotFound.
        self.assertEqual(code_of(ec2.delete_security_group, GroupId=sg)[0], "InvalidGroup.NotFound")
        time.sleep(2.05)
        self.assertEqual(ec2.describe_security_groups(Filters=stack)["SecurityGroups"], [])
        self.assertEqual(code_of(ec2.describe_vpcs, VpcIds=[vpc])[0], "InvalidVpcID.NotFound")

    def test_a_name_made_again_answers_with_the_live_template(self):
        ec2 = self.emu.client("ec2")
        data = {"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
        old = ec2.create_launch_template(LaunchTemplateName="t-web", LaunchTemplateData=data)[
            "LaunchTemplate"]["LaunchTemplateId"]
        ec2.delete_launch_template(LaunchTemplateId=old)
        self.assertEqual([t["LaunchTemplateId"] for t in ec2.describe_launch_templates(
            LaunchTemplateNames=["t-web"])["LaunchTemplates"]], [old])
        new = ec2.create_launch_template(LaunchTemplateName="t-web", LaunchTemplateData=data)[
            "LaunchTemplate"]["LaunchTemplateId"]
        self.assertEqual([t["LaunchTemplateId"] for t in ec2.describe_launch_templates(
            LaunchTemplateNames=["t-web"])["LaunchTemplates"]], [new])


class ElbDeletionProtectionTest(Base):
    BEHAVIOURS = "none,elb-deletion-protection"

    def test_a_protected_load_balancer_is_not_deleted_until_protection_is_off(self):
        vpc, subnets, sg = network(self.emu)
        elb = self.emu.client("elbv2")
        arn = elb.create_load_balancer(Name="t-alb", Subnets=subnets, SecurityGroups=[sg])[
            "LoadBalancers"][0]["LoadBalancerArn"]
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "deletion_protection.enabled", "Value": "true"}])
        self.assertEqual(code_of(elb.delete_load_balancer, LoadBalancerArn=arn),
                         ("OperationNotPermitted", 400))
        self.assertEqual(len(elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]), 1)
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "deletion_protection.enabled", "Value": "false"}])
        elb.delete_load_balancer(LoadBalancerArn=arn)
        self.assertEqual(code_of(elb.describe_load_balancers, LoadBalancerArns=[arn])[0],
                         "LoadBalancerNotFound")


class S3CreateBucketTagsTest(Base):
    BEHAVIOURS = "none,s3-create-bucket-tags"

    def test_create_bucket_applies_the_tags_of_its_configuration(self):
        s3 = self.emu.client("s3")
        s3.create_bucket(Bucket="t-code", CreateBucketConfiguration={
            "LocationConstraint": s3.meta.region_name,
            "Tags": [{"Key": "moodlestack:stack", "Value": "t"}, {"Key": "team", "Value": ""}]})
        self.assertEqual(
            sorted((t["Key"], t["Value"]) for t in s3.get_bucket_tagging(Bucket="t-code")["TagSet"]),
            [("moodlestack:stack", "t"), ("team", "")])
        # Without tags the bucket has none (GetBucketTagging: NoSuchTagSet), as on AWS.
        s3.create_bucket(Bucket="t-plain", CreateBucketConfiguration={
            "LocationConstraint": s3.meta.region_name})
        self.assertEqual(code_of(s3.get_bucket_tagging, Bucket="t-plain")[0], "NoSuchTagSet")


class RdsParameterGroupInUseTest(Base):
    BEHAVIOURS = "none,rds-parameter-group-in-use"

    def test_a_group_in_use_is_not_deleted_until_the_instance_moves(self):
        rds = self.rds()
        for name in ("t-pg-old", "t-pg-new"):
            rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily="mysql8.0",
                                          Description="t")
        create_db(rds, DBParameterGroupName="t-pg-old", AllocatedStorage=20)
        self.assertEqual(code_of(rds.delete_db_parameter_group, DBParameterGroupName="t-pg-old"),
                         ("InvalidDBParameterGroupState", 400))
        rds.modify_db_instance(DBInstanceIdentifier="t-db", DBParameterGroupName="t-pg-new",
                               ApplyImmediately=True)
        rds.delete_db_parameter_group(DBParameterGroupName="t-pg-old")


class AsgLifecycleHookFieldsTest(Base):
    BEHAVIOURS = "none,asg-lifecycle-hook-fields"

    def test_a_hook_reports_what_it_was_given(self):
        ec2, asg = self.emu.client("ec2"), self.emu.client("autoscaling")
        ec2.create_launch_template(LaunchTemplateName="hook-lt", LaunchTemplateData={
            "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName="hooked", LaunchTemplate={"LaunchTemplateName": "hook-lt"},
            MinSize=0, MaxSize=1, DesiredCapacity=0, VPCZoneIdentifier=subnet)
        asg.put_lifecycle_hook(
            AutoScalingGroupName="hooked", LifecycleHookName="drain",
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=300,
            DefaultResult="CONTINUE")
        hook = asg.describe_lifecycle_hooks(AutoScalingGroupName="hooked")["LifecycleHooks"][0]
        self.assertNotIn("NotificationTargetARN", hook)
        self.assertNotIn("RoleARN", hook)
        self.assertEqual(hook["GlobalTimeout"], 30000)
        self.assertEqual((hook["HeartbeatTimeout"], hook["DefaultResult"]), (300, "CONTINUE"))
        asg.put_lifecycle_hook(
            AutoScalingGroupName="hooked", LifecycleHookName="drain",
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=7200,
            NotificationTargetARN="arn:aws:sqs:eu-west-1:123456789012:q",
            RoleARN="arn:aws:iam::123456789012:role/hooks")
        hook = asg.describe_lifecycle_hooks(AutoScalingGroupName="hooked")["LifecycleHooks"][0]
        self.assertEqual(hook["NotificationTargetARN"], "arn:aws:sqs:eu-west-1:123456789012:q")
        self.assertEqual(hook["RoleARN"], "arn:aws:iam::123456789012:role/hooks")
        self.assertEqual(hook["GlobalTimeout"], 172800)


class CloudWatchAlarmFiltersTest(Base):
    BEHAVIOURS = "none,cloudwatch-alarm-filters"

    def test_prefix_and_state_filter_together(self):
        cw = self.emu.client("cloudwatch")
        for name in ("s-cron", "s-5xx", "other-cron"):
            cw.put_metric_alarm(AlarmName=name, MetricName="CronHeartbeat", Namespace="Moodlestack/s",
                                Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="LessThanThreshold")
        for name in ("s-cron", "other-cron"):
            cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="no heartbeat")
        firing = cw.describe_alarms(AlarmNamePrefix="s-", StateValue="ALARM")
        self.assertEqual([a["AlarmName"] for a in firing["MetricAlarms"]], ["s-cron"])
        named = cw.describe_alarms(AlarmNames=["s-5xx", "s-cron"], StateValue="ALARM")
        self.assertEqual([a["AlarmName"] for a in named["MetricAlarms"]], ["s-cron"])
        every = cw.describe_alarms(AlarmNamePrefix="s-")
        self.assertEqual(sorted(a["AlarmName"] for a in every["MetricAlarms"]), ["s-5xx", "s-cron"])


class LogsInterleavedTest(Base):
    BEHAVIOURS = "none,logs-interleaved"

    def test_filter_log_events_interleaves_the_streams(self):
        logs = self.emu.client("logs")
        logs.create_log_group(logGroupName="/moodlestack/s/cron")
        now = int(time.time() * 1000)
        for stream, offsets in (("i-b", (1, 3)), ("i-a", (0, 2, 4))):
            logs.create_log_stream(logGroupName="/moodlestack/s/cron", logStreamName=stream)
            logs.put_log_events(logGroupName="/moodlestack/s/cron", logStreamName=stream, logEvents=[
                {"timestamp": now + o, "message": f"{stream} {o}"} for o in offsets])
        got = logs.filter_log_events(logGroupName="/moodlestack/s/cron", startTime=now)["events"]
        self.assertEqual([e["message"] for e in got], ["i-a 0", "i-b 1", "i-a 2", "i-b 3", "i-a 4"])
        # Pages of an interleaved answer follow time too.
        first = logs.filter_log_events(logGroupName="/moodlestack/s/cron", startTime=now, limit=2)
        self.assertEqual([e["message"] for e in first["events"]], ["i-a 0", "i-b 1"])
        rest = logs.filter_log_events(logGroupName="/moodlestack/s/cron", startTime=now,
                                      nextToken=first["nextToken"])
        self.assertEqual([e["message"] for e in rest["events"]], ["i-a 2", "i-b 3", "i-a 4"])
        only = logs.filter_log_events(logGroupName="/moodlestack/s/cron", logStreamNames=["i-b"])
        self.assertEqual([e["message"] for e in only["events"]], ["i-b 1", "i-b 3"])


class TagFiltersTest(Base):
    BEHAVIOURS = "none,tag-filters"

    def test_nat_gateways_are_filtered_by_tag(self):
        vpc, subnets, sg = network(self.emu)
        ec2 = self.emu.client("ec2")
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=eip, TagSpecifications=[
            {"ResourceType": "natgateway", "Tags": [{"Key": "moodlestack:stack", "Value": "a"}]}])
        nat_id = nat["NatGateway"]["NatGatewayId"]
        mine = ec2.describe_nat_gateways(Filters=[{"Name": "tag:moodlestack:stack", "Values": ["a"]}])
        self.assertEqual([n["NatGatewayId"] for n in mine["NatGateways"]], [nat_id])
        other = ec2.describe_nat_gateways(Filters=[{"Name": "tag:moodlestack:stack", "Values": ["b"]}])
        self.assertEqual(other["NatGateways"], [])


class ValidationTest(Base):
    BEHAVIOURS = "none,validation"

    def test_model_and_documented_limits_with_aws_error_codes(self):
        ec2 = self.emu.client("ec2")
        big = base64.b64encode(b"#" * (16 * 1024 + 1)).decode()
        code = code_of(ec2.create_launch_template, LaunchTemplateName="t-web",
                       LaunchTemplateData={"UserData": big})
        self.assertEqual(code, ("InvalidParameterValue", 400))
        ok = base64.b64encode(b"#" * (16 * 1024)).decode()
        ec2.create_launch_template(LaunchTemplateName="t-web", LaunchTemplateData={"UserData": ok})
        # a length from the model (launch template names: 3-128)
        self.assertEqual(code_of(ec2.create_launch_template, LaunchTemplateName="ab",
                                 LaunchTemplateData={"ImageId": "ami-1"})[0], "InvalidParameterValue")
        elb = self.emu.client("elbv2")
        self.assertEqual(code_of(elb.create_target_group, Name="x" * 33, Protocol="HTTP", Port=80,
                                 VpcId="vpc-1")[0], "ValidationError")
        self.assertEqual(code_of(elb.create_target_group, Name="web-", Protocol="HTTP", Port=80,
                                 VpcId="vpc-1")[0], "ValidationError")
        # an enum from the model
        self.assertEqual(code_of(elb.create_target_group, Name="web", Protocol="HTTPX", Port=80,
                                 VpcId="vpc-1")[0], "ValidationError")
        # a range from the model (ports 1-65535)
        self.assertEqual(code_of(elb.create_target_group, Name="web", Protocol="HTTP", Port=70000,
                                 VpcId="vpc-1")[0], "ValidationError")
        ec = self.emu.client("elasticache")
        self.assertEqual(code_of(ec.create_replication_group, ReplicationGroupId="r" * 41,
                                 ReplicationGroupDescription="t")[0], "InvalidParameterValue")
        sm = self.emu.client("secretsmanager")
        self.assertEqual(code_of(sm.create_secret, Name="x" * 513, SecretString="s")[0],
                         "InvalidParameterException")
        ssm = self.emu.client("ssm")
        self.assertEqual(code_of(ssm.put_parameter, Name="/x", Value="v", Type="Nope")[0], "ValidationException")
        efs = self.emu.client("efs")
        self.assertEqual(code_of(efs.create_file_system, CreationToken="x" * 65), ("BadRequest", 400))
        rds = self.rds()
        self.assertEqual(code_of(rds.create_db_instance, DBInstanceIdentifier="1db", Engine="mysql",
                                 DBInstanceClass="db.t3.micro")[0], "InvalidParameterValue")


class BackupTest(Base):
    """The AWS Backup calls moto 5.2.5 lacks, added by moto_server.py (not switchable)."""

    def test_selections_plan_updates_jobs_and_recovery_points(self):
        b = self.emu.client("backup")
        b.create_backup_vault(BackupVaultName="v1", BackupVaultTags={"moodlestack:stack": "t"})
        rule = {"RuleName": "daily", "TargetBackupVaultName": "v1",
                "ScheduleExpression": "cron(0 3 ? * * *)", "Lifecycle": {"DeleteAfterDays": 35}}
        plan = b.create_backup_plan(BackupPlan={"BackupPlanName": "p1", "Rules": [rule]},
                                    BackupPlanTags={"moodlestack:stack": "t"})
        pid = plan["BackupPlanId"]
        self.assertEqual(b.list_tags(ResourceArn=plan["BackupPlanArn"])["Tags"], {"moodlestack:stack": "t"})
        fs = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-1"
        role = "arn:aws:iam::123456789012:role/backup"
        sel = b.create_backup_selection(BackupPlanId=pid, BackupSelection={
            "SelectionName": "s1", "IamRoleArn": role, "Resources": [fs]})
        listed = b.list_backup_selections(BackupPlanId=pid)["BackupSelectionsList"]
        self.assertEqual([(s["SelectionId"], s["SelectionName"]) for s in listed], [(sel["SelectionId"], "s1")])
        got = b.get_backup_selection(BackupPlanId=pid, SelectionId=sel["SelectionId"])["BackupSelection"]
        self.assertEqual((got["IamRoleArn"], got["Resources"]), (role, [fs]))
        # ListTags as the current SDKs send it: no trailing slash after the ARN.
        from urllib.parse import quote
        req = urllib.request.Request(
            self.emu.url + "/tags/" + quote(plan["BackupPlanArn"], safe=""),
            headers={"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/"
                                      "backup/aws4_request, SignedHeaders=host, Signature=0"})
        with urllib.request.urlopen(req) as r:
            self.assertEqual(json.loads(r.read())["Tags"], {"moodlestack:stack": "t"})
        # UpdateBackupPlan: a new version with the new rule.
        rule["ScheduleExpression"] = "cron(0 4 ? * * *)"
        up = b.update_backup_plan(BackupPlanId=pid, BackupPlan={"BackupPlanName": "p1", "Rules": [rule]})
        self.assertNotEqual(up["VersionId"], plan["VersionId"])
        self.assertEqual(b.get_backup_plan(BackupPlanId=pid)["BackupPlan"]["Rules"][0]["ScheduleExpression"],
                         "cron(0 4 ? * * *)")
        # A plan with selections is not deleted.
        self.assertEqual(code_of(b.delete_backup_plan, BackupPlanId=pid)[0], "InvalidRequestException")
        # An on-demand job: CREATED, RUNNING, then COMPLETED; its recovery point is in the vault
        # from the start (CREATING, with its tags: DescribeRecoveryPoint's "CREATING status
        # indicates that an Backup job has been initiated for a resource"), COMPLETED with it.
        job = b.start_backup_job(BackupVaultName="v1", ResourceArn=fs, IamRoleArn=role,
                                 IdempotencyToken="tok-1", RecoveryPointTags={"moodlestack:stack": "t"})
        self.assertTrue(job["RecoveryPointArn"].startswith("arn:aws:backup:eu-west-1:123456789012:recovery-point:"))
        again = b.start_backup_job(BackupVaultName="v1", ResourceArn=fs, IamRoleArn=role, IdempotencyToken="tok-1")
        self.assertEqual(again["BackupJobId"], job["BackupJobId"])
        self.assertEqual(b.describe_backup_job(BackupJobId=job["BackupJobId"])["State"], "CREATED")
        point = b.describe_recovery_point(BackupVaultName="v1", RecoveryPointArn=job["RecoveryPointArn"])
        self.assertEqual((point["Status"], point["ResourceArn"]), ("CREATING", fs))
        self.assertEqual(b.list_tags(ResourceArn=job["RecoveryPointArn"])["Tags"], {"moodlestack:stack": "t"})
        wait_until(lambda: b.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "RUNNING")
        wait_until(lambda: b.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "COMPLETED")
        self.assertEqual(b.describe_recovery_point(BackupVaultName="v1", RecoveryPointArn=job["RecoveryPointArn"])
                         ["Status"], "COMPLETED")
        jobs = b.list_backup_jobs(ByResourceArn=fs, ByBackupVaultName="v1")["BackupJobs"]
        self.assertEqual([(j["BackupJobId"], j["State"], j["RecoveryPointArn"]) for j in jobs],
                         [(job["BackupJobId"], "COMPLETED", job["RecoveryPointArn"])])
        self.assertEqual(b.list_backup_jobs(ByResourceArn=role)["BackupJobs"], [])
        # A restore of it into its file system (in place): PENDING, RUNNING, COMPLETED, the file
        # system as the created resource.
        restore = b.start_restore_job(RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn=role,
                                      ResourceType="EFS", IdempotencyToken="tok-r",
                                      Metadata={"file-system-id": "fs-1", "newFileSystem": "false"})
        self.assertEqual(b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])["Status"], "PENDING")
        wait_until(lambda: b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])["Status"] == "COMPLETED")
        done = b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])
        self.assertEqual((done["RecoveryPointArn"], done["CreatedResourceArn"]), (job["RecoveryPointArn"], fs))
        self.assertEqual([j["RestoreJobId"] for j in b.list_restore_jobs(ByResourceType="EFS")["RestoreJobs"]],
                         [restore["RestoreJobId"]])
        points = b.list_recovery_points_by_backup_vault(BackupVaultName="v1")["RecoveryPoints"]
        self.assertEqual([(p["ResourceArn"], p["ResourceType"], p["Status"]) for p in points],
                         [(fs, "EFS", "COMPLETED")])
        self.assertEqual(b.list_tags(ResourceArn=points[0]["RecoveryPointArn"])["Tags"], {"moodlestack:stack": "t"})
        # A vault with recovery points is not deleted.
        self.assertEqual(code_of(b.delete_backup_vault, BackupVaultName="v1")[0], "InvalidRequestException")
        b.delete_recovery_point(BackupVaultName="v1", RecoveryPointArn=points[0]["RecoveryPointArn"])
        b.delete_backup_selection(BackupPlanId=pid, SelectionId=sel["SelectionId"])
        b.delete_backup_plan(BackupPlanId=pid)
        # The name of a deleted plan may be used again.
        b.create_backup_plan(BackupPlan={"BackupPlanName": "p1", "Rules": [rule]})
        b.delete_backup_vault(BackupVaultName="v1")
        self.assertEqual(b.list_backup_vaults()["BackupVaultList"], [])


class BackupRestoreNewFileSystemTest(Base):
    """An EFS recovery point restored into a NEW file system (StartRestoreJob metadata
    `newFileSystem=true`, what `files.restore_from` does): added by moto_server.py, with the
    file system's `creating` state of pending-states."""

    BEHAVIOURS = "pending-states"

    def test_a_restore_makes_a_new_file_system_with_the_metadatas_settings(self):
        efs = self.emu.client("efs")
        b = self.emu.client("backup")
        src = efs.create_file_system(CreationToken="src", Encrypted=True)
        wait_until(lambda: efs.describe_file_systems(FileSystemId=src["FileSystemId"])
                   ["FileSystems"][0]["LifeCycleState"] == "available")
        b.create_backup_vault(BackupVaultName="v1")
        role = "arn:aws:iam::123456789012:role/backup"
        job = b.start_backup_job(BackupVaultName="v1", ResourceArn=src["FileSystemArn"], IamRoleArn=role)
        wait_until(lambda: b.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "COMPLETED")
        meta = {"file-system-id": src["FileSystemId"], "newFileSystem": "true", "CreationToken": "copy",
                "Encrypted": "true", "PerformanceMode": "maxIO"}
        restore = b.start_restore_job(RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn=role,
                                      ResourceType="EFS", IdempotencyToken="r1", Metadata=meta)
        again = b.start_restore_job(RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn=role,
                                    ResourceType="EFS", IdempotencyToken="r1", Metadata=meta)
        self.assertEqual(again["RestoreJobId"], restore["RestoreJobId"])
        described = b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])
        self.assertEqual(described["Status"], "PENDING")
        self.assertNotIn("CreatedResourceArn", described)
        self.assertEqual(efs.describe_file_systems(CreationToken="copy")["FileSystems"], [])
        # Running: the new file system exists, `creating`, untagged, with the metadata's settings.
        wait_until(lambda: b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])["Status"] == "RUNNING")
        made = efs.describe_file_systems(CreationToken="copy")["FileSystems"]
        self.assertEqual([(f["LifeCycleState"], f["Encrypted"], f["PerformanceMode"], f["Tags"]) for f in made],
                         [("creating", True, "maxIO", [])])
        wait_until(lambda: b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])["Status"] == "COMPLETED")
        done = b.describe_restore_job(RestoreJobId=restore["RestoreJobId"])
        self.assertEqual(done["CreatedResourceArn"], made[0]["FileSystemArn"])
        self.assertNotEqual(done["CreatedResourceArn"], src["FileSystemArn"])
        self.assertEqual(efs.describe_file_systems(FileSystemId=made[0]["FileSystemId"])
                         ["FileSystems"][0]["LifeCycleState"], "available")
        # PutBackupPolicy (missing in moto) turns the new file system's automatic backups on.
        efs.put_backup_policy(FileSystemId=made[0]["FileSystemId"], BackupPolicy={"Status": "ENABLED"})
        self.assertEqual(efs.describe_backup_policy(FileSystemId=made[0]["FileSystemId"])["BackupPolicy"],
                         {"Status": "ENABLED"})
        # A creation token in use: the job fails (AWS Backup reads the metadata in the job), and no
        # second file system is made.
        taken = b.start_restore_job(RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn=role,
                                    ResourceType="EFS", Metadata=meta)
        wait_until(lambda: b.describe_restore_job(RestoreJobId=taken["RestoreJobId"])["Status"] == "FAILED")
        self.assertIn("already exists",
                      b.describe_restore_job(RestoreJobId=taken["RestoreJobId"])["StatusMessage"])
        self.assertEqual(len(efs.describe_file_systems(CreationToken="copy")["FileSystems"]), 1)
        self.assertEqual(sorted(j["Status"] for j in b.list_restore_jobs()["RestoreJobs"]),
                         ["COMPLETED", "FAILED"])


class RdsRestoreClusterTest(Base):
    """RDS RestoreDBClusterFromSnapshot of a cluster whose master password RDS manages (what
    `database.restore_from` does for Aurora): replaced by moto_server.py (moto answers HTTP 500),
    with AWS's shape: the request's settings and tags only, no managed master secret until
    ModifyDBCluster turns it on; an identifier in use is DBClusterAlreadyExistsFault."""

    BEHAVIOURS = "none,rds-secret-tags"

    def test_a_restored_cluster_has_the_requests_settings_and_no_managed_secret(self):
        rds, sg, tags = rds_stack(self, "db.cluster")
        source = rds.create_db_cluster(
            DBClusterIdentifier="t-db", Engine="aurora-mysql", EngineVersion="8.0.mysql_aurora.3.08.0",
            MasterUsername="moodle", ManageMasterUserPassword=True, DBSubnetGroupName="t-db",
            VpcSecurityGroupIds=[sg], DatabaseName="moodle", StorageEncrypted=True, Tags=tags,
            BackupRetentionPeriod=7)["DBCluster"]
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="t-code-1", DBClusterIdentifier="t-db")
        rds.delete_db_cluster(DBClusterIdentifier="t-db", SkipFinalSnapshot=True)
        restored_tags = tags + [{"Key": "moodlestack:restored-from", "Value": "t-code-1"}]
        restore = dict(DBClusterIdentifier="t-db", SnapshotIdentifier="t-code-1", Engine="aurora-mysql",
                       DBSubnetGroupName="t-db", VpcSecurityGroupIds=[sg], DeletionProtection=True,
                       BackupRetentionPeriod=9, Tags=restored_tags)
        c = rds.restore_db_cluster_from_snapshot(**restore)["DBCluster"]
        self.assertNotIn("MasterUserSecret", c)
        self.assertEqual(c["TagList"], restored_tags)
        self.assertEqual((c["MasterUsername"], c["DatabaseName"], c["StorageEncrypted"], c["EngineVersion"]),
                         ("moodle", "moodle", True, "8.0.mysql_aurora.3.08.0"))
        self.assertEqual((c["DeletionProtection"], c["BackupRetentionPeriod"]), (True, 9))
        self.assertGreaterEqual(c["ClusterCreateTime"], source["ClusterCreateTime"])
        self.assertEqual(code_of(rds.restore_db_cluster_from_snapshot, **restore),
                         ("DBClusterAlreadyExistsFault", 400))
        # ModifyDBCluster turns the managed master password on: a new secret, with the tags.
        m = rds.modify_db_cluster(DBClusterIdentifier="t-db", ManageMasterUserPassword=True,
                                  ApplyImmediately=True)["DBCluster"]
        arn = m["MasterUserSecret"]["SecretArn"]
        self.assertEqual(rds.describe_db_clusters(DBClusterIdentifier="t-db")["DBClusters"][0]
                         ["MasterUserSecret"]["SecretArn"], arn)
        secret = self.emu.client("secretsmanager").describe_secret(SecretId=arn)
        self.assertIn({"Key": "moodlestack:restored-from", "Value": "t-code-1"}, secret["Tags"])


class RdsRestoreInstanceTest(Base):
    """RDS RestoreDBInstanceFromDBSnapshot with ManageMasterUserPassword=true (what
    `database.restore_from` would ask of a standalone database): AWS applies it to RDS for Oracle
    only and restores other engines with the snapshot's password and no managed secret; moto made
    one. ModifyDBInstance ManageMasterUserPassword=true then gives the instance a new secret."""

    BEHAVIOURS = "none,rds-secret-tags"

    def test_a_restored_instance_has_no_managed_secret_until_a_modify(self):
        rds, sg, tags = rds_stack(self, "db.instance")
        old = rds.create_db_instance(
            DBInstanceIdentifier="t-db", Engine="mysql", DBInstanceClass="db.t4g.micro", AllocatedStorage=20,
            MasterUsername="moodle", ManageMasterUserPassword=True, DBSubnetGroupName="t-db",
            VpcSecurityGroupIds=[sg], Tags=tags)["DBInstance"]["MasterUserSecret"]["SecretArn"]
        rds.create_db_snapshot(DBSnapshotIdentifier="t-code-1", DBInstanceIdentifier="t-db")
        rds.delete_db_instance(DBInstanceIdentifier="t-db", SkipFinalSnapshot=True)
        restored_tags = tags + [{"Key": "moodlestack:restored-from", "Value": "t-code-1"}]
        i = rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier="t-db", DBSnapshotIdentifier="t-code-1", DBInstanceClass="db.t4g.micro",
            DBSubnetGroupName="t-db", VpcSecurityGroupIds=[sg], ManageMasterUserPassword=True,
            Tags=restored_tags)["DBInstance"]
        self.assertNotIn("MasterUserSecret", i)
        described = rds.describe_db_instances(DBInstanceIdentifier="t-db")["DBInstances"][0]
        self.assertNotIn("MasterUserSecret", described)
        # ModifyDBInstance turns the managed master password on: a new secret, with the tags.
        m = rds.modify_db_instance(DBInstanceIdentifier="t-db", ManageMasterUserPassword=True,
                                   ApplyImmediately=True)["DBInstance"]
        arn = m["MasterUserSecret"]["SecretArn"]
        self.assertNotEqual(arn, old)
        self.assertEqual(rds.describe_db_instances(DBInstanceIdentifier="t-db")["DBInstances"][0]
                         ["MasterUserSecret"]["SecretArn"], arn)
        secret = self.emu.client("secretsmanager").describe_secret(SecretId=arn)
        self.assertIn({"Key": "moodlestack:restored-from", "Value": "t-code-1"}, secret["Tags"])


class Proxy:
    def __init__(self, upstream, *args):
        up = ["--upstream", upstream] if upstream else []
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "faults.py"), *up,
                                      "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class FaultProxyTest(Base):
    BEHAVIOURS = "none"

    def proxy(self, *args):
        p = Proxy(self.emu.url, *args)
        self.addCleanup(p.stop)
        return p

    def test_throttling_errors_in_each_protocols_wire_format(self):
        p = self.proxy("--fault-rate", "1", "--faults", "throttle")
        calls = [
            ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded", 503),
            ("rds", lambda c: c.describe_db_instances(), "Throttling", 400),
            ("elasticache", lambda c: c.describe_replication_groups(), "Throttling", 400),
            ("elbv2", lambda c: c.describe_load_balancers(), "Throttling", 400),
            ("autoscaling", lambda c: c.describe_auto_scaling_groups(), "Throttling", 400),
            ("iam", lambda c: c.list_roles(), "Throttling", 400),
            ("sts", lambda c: c.get_caller_identity(), "Throttling", 400),
            ("secretsmanager", lambda c: c.list_secrets(), "ThrottlingException", 400),
            ("ssm", lambda c: c.get_parameter(Name="/x"), "ThrottlingException", 400),
            ("efs", lambda c: c.describe_file_systems(), "ThrottlingException", 429),
            ("backup", lambda c: c.list_backup_vaults(), "ThrottlingException", 429),
            ("s3", lambda c: c.list_buckets(), "SlowDown", 503),
        ]
        for service, call, code, status in calls:
            with self.subTest(service=service):
                client = self.emu.client(service, url=p.url)
                self.assertEqual(code_of(call, client), (code, status))

    def test_503_and_the_sdk_retries_through_it(self):
        p = self.proxy("--fault-rate", "1", "--faults", "503")
        self.assertEqual(code_of(self.emu.client("ec2", url=p.url).describe_vpcs), ("Unavailable", 503))
        self.assertEqual(code_of(self.emu.client("rds", url=p.url).describe_db_instances), ("ServiceUnavailable", 503))
        self.assertEqual(code_of(self.emu.client("ssm", url=p.url).get_parameter, Name="/x"), ("ServiceUnavailable", 503))
        self.assertEqual(code_of(self.emu.client("efs", url=p.url).describe_file_systems), ("ServiceUnavailable", 503))
        self.assertEqual(code_of(self.emu.client("s3", url=p.url).list_buckets), ("ServiceUnavailable", 503))
        e = self.proxy("--fault-rate", "1", "--faults", "503-empty")
        self.assertEqual(code_of(self.emu.client("rds", url=e.url).describe_db_instances)[1], 503)
        # a 20 % share, seeded: a client with retries gets through every call
        q = self.proxy("--fault-rate", "0.2", "--seed", "7")
        ec2 = self.emu.client("ec2", url=q.url, retries=10)
        for _ in range(30):
            ec2.describe_vpcs()
        stats = json.load(urllib.request.urlopen(q.url + "/__faults/stats"))
        self.assertGreater(stats["faulted"], 0)
        self.assertEqual(stats["requests"], 30 + stats["faulted"])

    def test_same_seed_same_faults(self):
        def sequence(seed):
            p = Proxy(self.emu.url, "--fault-rate", "0.5", "--seed", str(seed))
            try:
                ec2 = self.emu.client("ec2", url=p.url)
                return [code_of(ec2.describe_vpcs)[0] for _ in range(20)]
            finally:
                p.stop()
        first = sequence(3)
        self.assertEqual(first, sequence(3))
        self.assertIn(None, first)
        self.assertIn("RequestLimitExceeded", first)
        self.assertNotEqual(first, sequence(4))

    def test_sigkill_after_the_kth_mutating_request(self):
        victim = subprocess.Popen(["sleep", "60"])
        self.addCleanup(lambda: (victim.poll() is None and victim.kill(), victim.wait()))
        log = os.path.join(self._tmp(), "requests.jsonl")
        p = self.proxy("--kill-pid", str(victim.pid), "--kill-after", "2", "--log", log)
        ec2 = self.emu.client("ec2", url=p.url)
        ec2.describe_vpcs()  # not mutating
        ec2.create_vpc(CidrBlock="10.1.0.0/16")
        time.sleep(0.2)
        self.assertIsNone(victim.poll(), "killed too early")
        ec2.create_vpc(CidrBlock="10.2.0.0/16")
        self.assertEqual(victim.wait(timeout=5), -9)
        # the request that triggered the kill reached the emulator
        cidrs = {v["CidrBlock"] for v in self.emu.client("ec2").describe_vpcs()["Vpcs"]}
        self.assertTrue({"10.1.0.0/16", "10.2.0.0/16"} <= cidrs)
        entries = [json.loads(line) for line in open(log)]
        self.assertEqual([e["action"] for e in entries], ["DescribeVpcs", "CreateVpc", "CreateVpc"])
        self.assertEqual([e["mutating"] for e in entries], [False, True, True])
        self.assertTrue(entries[-1]["killed"])

    def test_latency_and_request_log_with_rounds(self):
        sys.path.insert(0, HERE)
        from faults import rounds
        log = os.path.join(self._tmp(), "requests.jsonl")
        p = self.proxy("--latency-ms", "100", "--log", log)
        ec2 = self.emu.client("ec2", url=p.url)
        efs = self.emu.client("efs", url=p.url)
        sm = self.emu.client("secretsmanager", url=p.url)
        ec2.describe_vpcs()  # the first EC2 call loads moto's data: outside the timing
        start = time.time()
        ec2.describe_vpcs()
        efs.describe_file_systems()
        sm.list_secrets()
        self.assertGreaterEqual(time.time() - start, 0.3)
        entries = [json.loads(line) for line in open(log)]
        self.assertEqual([e["action"] for e in entries],
                         ["DescribeVpcs", "DescribeVpcs", "DescribeFileSystems", "ListSecrets"])
        self.assertEqual([e["service"] for e in entries[1:]], ["ec2", "elasticfilesystem", "secretsmanager"])
        for e in entries:
            self.assertGreaterEqual(e["end"] - e["start"], 0.1)
        self.assertEqual(rounds(entries), 4)  # one after the other

    def test_record_and_replay_without_the_emulator(self):
        answers = os.path.join(self._tmp(), "answers.jsonl")
        rec = self.proxy("--record", answers)
        kms = self.emu.client("kms", url=rec.url)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.tag_resource(KeyId=key, Tags=[{"TagKey": "moodlestack:stack", "TagValue": "demo"}])
        described = kms.describe_key(KeyId=key)["KeyMetadata"]
        tags = kms.list_resource_tags(KeyId=key)["Tags"]
        vpcs = self.emu.client("ec2", url=rec.url).describe_vpcs()["Vpcs"]
        rec.stop()
        self.emu.stop()  # the replay needs no emulator
        log = os.path.join(self._tmp(), "requests.jsonl")
        rep = Proxy(None, "--replay", answers, "--latency-ms", "100", "--log", log)
        self.addCleanup(rep.stop)
        kms = self.emu.client("kms", url=rep.url)
        # The same body to two actions (the action is in X-Amz-Target): each gets its own answer.
        self.assertEqual(kms.list_resource_tags(KeyId=key)["Tags"], tags)
        self.assertEqual(kms.describe_key(KeyId=key)["KeyMetadata"], described)
        self.assertEqual(self.emu.client("ec2", url=rep.url).describe_vpcs()["Vpcs"], vpcs)
        # Not recorded: HTTP 599 and a miss.
        with self.assertRaises(Exception):
            kms.get_key_rotation_status(KeyId=key)
        stats = json.load(urllib.request.urlopen(rep.url + "/__faults/stats"))
        self.assertEqual(stats["misses"], 1)
        entries = [json.loads(line) for line in open(log)]
        self.assertEqual([e["status"] for e in entries][:3], [200, 200, 200])
        self.assertEqual(entries[-1]["status"], 599)
        for e in entries:
            self.assertGreaterEqual(e["end"] - e["start"], 0.1)

    def _tmp(self):
        import tempfile
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        return d


class RoundsTest(unittest.TestCase):
    def test_waves(self):
        sys.path.insert(0, HERE)
        from faults import rounds

        def e(s, t):
            return {"start": s, "end": t}
        self.assertEqual(rounds([]), 0)
        self.assertEqual(rounds([e(0, 1), e(1, 2), e(2, 3)]), 3)  # a chain
        self.assertEqual(rounds([e(0, 1), e(0, 1), e(0.1, 1.1)]), 1)  # side by side
        self.assertEqual(rounds([e(0, 1), e(0.5, 1.5), e(1.5, 2.5)]), 2)


class RunCommandHookTest(Base):
    """MOODLESTACK_EMULATOR_RUN_COMMAND: AWS-RunShellScript really runs (moto alone answers
    `Success`, exit code 0, no output, for every command)."""
    ENV = {"MOODLESTACK_EMULATOR_RUN_COMMAND": "bash"}

    def invocation(self, commands, timeout="60"):
        ec2, ssm = self.emu.client("ec2"), self.emu.client("ssm")
        iid = ec2.run_instances(ImageId="ami-785db401", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        cid = ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript",
                               Parameters={"commands": commands, "executionTimeout": [timeout]})["Command"]["CommandId"]
        return lambda: ssm.get_command_invocation(CommandId=cid, InstanceId=iid), iid

    def test_runs_the_script_and_reports_its_output_and_exit_code(self):
        get, iid = self.invocation(["echo out $MOODLESTACK_INSTANCE_ID", "echo err >&2", "sleep 1", "exit 3"])
        first = get()
        self.assertEqual((first["Status"], first["ResponseCode"]), ("InProgress", -1))
        done = wait_until(lambda: (lambda i: i if i["Status"] != "InProgress" else None)(get()))
        self.assertEqual((done["Status"], done["ResponseCode"]), ("Failed", 3))
        self.assertEqual(done["StandardOutputContent"], f"out {iid}\n")
        self.assertEqual(done["StandardErrorContent"], "err\n")
        get, _ = self.invocation(["printf '%s' {1..30000} | head -c 30000"])
        done = wait_until(lambda: (lambda i: i if i["Status"] != "InProgress" else None)(get()))
        self.assertEqual((done["Status"], done["ResponseCode"]), ("Success", 0))
        self.assertEqual(len(done["StandardOutputContent"]), 24000)  # what AWS keeps

    def test_a_command_past_its_execution_timeout_is_killed(self):
        get, _ = self.invocation(["sleep 30"], timeout="1")
        done = wait_until(lambda: (lambda i: i if i["Status"] != "InProgress" else None)(get()), timeout=10)
        self.assertEqual((done["Status"], done["ResponseCode"]), ("TimedOut", -1))


class LaunchTemplateTagsTest(Base):
    """DescribeLaunchTemplates reports a template's tags as they are now (moto alone: as created)."""

    def test_create_tags_shows_in_describe_launch_templates(self):
        ec2 = self.emu.client("ec2")
        lt = ec2.create_launch_template(
            LaunchTemplateName="t-web", LaunchTemplateData={"ImageId": "ami-785db401"},
            TagSpecifications=[{"ResourceType": "launch-template",
                                "Tags": [{"Key": "moodlestack:stack", "Value": "t"}]}])["LaunchTemplate"]
        ec2.create_tags(Resources=[lt["LaunchTemplateId"]],
                        Tags=[{"Key": "moodlestack:expires-at", "Value": "2026-12-01T06:00:00Z"}])
        ec2.delete_tags(Resources=[lt["LaunchTemplateId"]], Tags=[{"Key": "moodlestack:stack"}])
        got = ec2.describe_launch_templates(LaunchTemplateNames=["t-web"])["LaunchTemplates"][0]
        self.assertEqual([(t["Key"], t["Value"]) for t in got["Tags"]],
                         [("moodlestack:expires-at", "2026-12-01T06:00:00Z")])


class TaggingApiTest(Base):
    """What moto's tag:GetResources reports for the kinds moodlestack tags (see README)."""

    def test_get_resources_finds_resources_by_tag_key(self):
        ec2, tagging = self.emu.client("ec2"), self.emu.client("resourcegroupstaggingapi")
        tags = [{"Key": "moodlestack:stack", "Value": "t"}, {"Key": "moodlestack:id", "Value": "net.vpc"}]
        ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])
        ec2.create_vpc(CidrBlock="10.1.0.0/16")
        found = tagging.get_resources(TagFilters=[{"Key": "moodlestack:stack"}])["ResourceTagMappingList"]
        self.assertEqual(len(found), 1)
        self.assertIn(":vpc/", found[0]["ResourceARN"])


class PricesTest(Base):
    """The Price List API (moto has none) and the Spot price history (moto answers a constant)
    from the sample localstack/price-list.json, as AWS answers them (see README, Prices)."""

    def pricing(self):
        # The Price List API's endpoint is in us-east-1, whatever the stack's region.
        return boto3.client("pricing", region_name="us-east-1", endpoint_url=self.emu.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def test_get_products_filters_by_term_match_and_pages(self):
        pricing = self.pricing()
        filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
                   {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "t3.medium"},
                   {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
                   {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"}]
        got = pricing.get_products(ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1")
        self.assertEqual(got["FormatVersion"], "aws_v1")
        self.assertEqual(len(got["PriceList"]), 1)
        doc = json.loads(got["PriceList"][0])  # each entry a JSON document in a string
        self.assertEqual(doc["product"]["attributes"]["instanceType"], "t3.medium")
        self.assertEqual(doc["publicationDate"], "2026-11-20T00:00:00Z")
        (term,) = doc["terms"]["OnDemand"].values()
        (dim,) = term["priceDimensions"].values()
        self.assertEqual((dim["unit"], dim["pricePerUnit"]["USD"]), ("Hrs", "0.0456000000"))
        # productFamily is a field of the product, filtered like an attribute.
        nat = pricing.get_products(ServiceCode="AmazonEC2", Filters=[
            {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "NAT Gateway"},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}])["PriceList"]
        self.assertEqual(sorted(json.loads(d)["product"]["attributes"]["usagetype"] for d in nat),
                         ["NatGateway-Bytes", "NatGateway-Hours"])
        # Another service's products never match; pages of MaxResults with a NextToken.
        every = pricing.get_products(ServiceCode="AmazonRDS")["PriceList"]
        self.assertTrue(every and all(json.loads(d)["serviceCode"] == "AmazonRDS" for d in every))
        pages = list(pricing.get_paginator("get_products").paginate(
            ServiceCode="AmazonRDS", PaginationConfig={"PageSize": 5}))
        self.assertGreater(len(pages), 1)
        self.assertEqual(sum((p["PriceList"] for p in pages), []), every)
        self.assertEqual(code_of(pricing.get_products, ServiceCode="AmazonEC2", Filters=[
            {"Type": "CONTAINS", "Field": "instanceType", "Value": "t3"}])[0],
            "InvalidParameterException")

    def test_spot_price_history_in_a_window_with_the_price_at_its_start(self):
        ec2 = self.emu.client("ec2")
        got = ec2.describe_spot_price_history(
            InstanceTypes=["m5.large", "t3.medium"], ProductDescriptions=["Linux/UNIX"],
            StartTime="2026-11-20T00:00:00Z", EndTime="2026-11-27T00:00:00Z",
            Filters=[{"Name": "availability-zone", "Values": ["eu-west-1a", "eu-west-1b"]}],
        )["SpotPriceHistory"]
        # No change in the window: the last one before it, per type and zone (not moto's
        # constant 0.00001 of 2006).
        self.assertEqual(sorted((p["InstanceType"], p["AvailabilityZone"], p["SpotPrice"]) for p in got),
                         [("m5.large", "eu-west-1a", "0.038100"), ("m5.large", "eu-west-1b", "0.040200"),
                          ("t3.medium", "eu-west-1a", "0.016300"), ("t3.medium", "eu-west-1b", "0.015800")])
        wider = ec2.describe_spot_price_history(
            InstanceTypes=["m5.large"], StartTime="2026-11-01T00:00:00Z", EndTime="2026-11-27T00:00:00Z",
            Filters=[{"Name": "availability-zone", "Values": ["eu-west-1a"]}])["SpotPriceHistory"]
        self.assertEqual([p["SpotPrice"] for p in wider], ["0.038100", "0.041910"])  # newest first
        # A type the sample lacks has no history: no made-up price.
        self.assertEqual(ec2.describe_spot_price_history(InstanceTypes=["x2iedn.32xlarge"])["SpotPriceHistory"], [])

class LogsMetricFiltersTest(Base):
    BEHAVIOURS = "none,logs-metric-filters"

    def test_a_filter_is_replaced_by_name_and_deleted_with_its_group(self):
        logs = self.emu.client("logs")
        self.assertEqual(code_of(logs.put_metric_filter, **metric_filter("/t/missing", "1"))[0],
                         "ResourceNotFoundException")
        logs.create_log_group(logGroupName="/t/fpm")
        logs.put_metric_filter(**metric_filter("/t/fpm", "1"))
        logs.put_metric_filter(**metric_filter("/t/fpm", "2"))
        found = logs.describe_metric_filters(logGroupName="/t/fpm")["metricFilters"]
        self.assertEqual([f["metricTransformations"][0]["metricValue"] for f in found], ["2"])
        logs.delete_log_group(logGroupName="/t/fpm")
        logs.create_log_group(logGroupName="/t/fpm")
        self.assertEqual(logs.describe_metric_filters(logGroupName="/t/fpm")["metricFilters"], [])


def metric_filter(group, value):
    return {"logGroupName": group, "filterName": "max-children",
            "filterPattern": '"reached pm.max_children"',
            "metricTransformations": [{"metricName": "FpmMaxChildrenReached",
                                       "metricNamespace": "Moodlestack/t", "metricValue": value}]}


class LogsKmsKeyTest(Base):
    """CloudWatch Logs AssociateKmsKey and DisassociateKmsKey, added by moto_server.py (not
    switchable)."""
    BEHAVIOURS = "none"

    def test_a_groups_key_is_set_and_removed(self):
        logs = self.emu.client("logs")
        key = self.emu.client("kms").create_key()["KeyMetadata"]["Arn"]
        logs.create_log_group(logGroupName="/t/boot")
        self.assertEqual(code_of(logs.associate_kms_key, logGroupName="/t/none", kmsKeyId=key)[0],
                         "ResourceNotFoundException")
        logs.associate_kms_key(logGroupName="/t/boot", kmsKeyId=key)
        group = logs.describe_log_groups(logGroupNamePrefix="/t/boot")["logGroups"][0]
        self.assertEqual(group["kmsKeyId"], key)
        logs.disassociate_kms_key(logGroupName="/t/boot")
        group = logs.describe_log_groups(logGroupNamePrefix="/t/boot")["logGroups"][0]
        self.assertNotIn("kmsKeyId", group)


if __name__ == "__main__":
    prog = unittest.main(exit=False)
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    # one line in cargo's format, so scripts/test's closing count includes these tests
    print(f"test result: {'ok' if failed == 0 else 'FAILED'}. {r.testsRun - failed - len(r.skipped)} passed; "
          f"{failed} failed; {len(r.skipped)} ignored (localstack/test_behaviours.py)")
    sys.exit(1 if failed else 0)
