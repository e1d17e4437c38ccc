"""moto's server, plus the AWS calls moodlestack makes that moto 5.2.5 lacks.

- ElastiCache `DeleteCacheSubnetGroup` answers "not implemented" (HTTP 500), so a stack could
  never be destroyed on the emulator. Added with AWS's behaviour: the group and its tags are
  removed; an unknown name is `CacheSubnetGroupNotFoundFault`.
- Auto Scaling `StartInstanceRefresh` and `DescribeInstanceRefreshes` answer HTTP 500, so no
  rollout could run. Added: a refresh is recorded with its preferences as `InProgress`; a second
  one while it runs is AWS's `InstanceRefreshInProgress`; like everything on the emulator it
  finishes quickly (`Successful` after REFRESH_SECONDS); they are listed newest first.
  `CancelInstanceRefresh` (also missing) ends the running one as `Cancelled` with AWS's reason, or
  answers `ActiveInstanceRefreshNotFound`.
- ElastiCache `DeleteReplicationGroup` leaves the group `deleting` for ever (here it is removed,
  as AWS does once deleted); `ModifyReplicationGroup` drops `EngineVersion` and
  `SecurityGroupIds` (applied here); `IncreaseReplicaCount`/`DecreaseReplicaCount` are missing
  (added); node groups lack their `ReaderEndpoint` (added).
- EFS `UpdateFileSystem` is missing (added: throughput mode), and so is `PutBackupPolicy`
  (added: the file system's automatic backups, which `DescribeBackupPolicy` reads).
- There is no Price List API (`pricing`: `AWSPriceListService.GetProducts`, JSON 1.1): moto has
  no such service. Added: GetProducts answers from the committed sample localstack/price-list.json
  (AWS's GetProducts format: FormatVersion `aws_v1`, each PriceList entry a JSON string), keeping
  the products of `ServiceCode` whose fields equal every `TERM_MATCH` filter, paginated by
  `MaxResults` (at most 100) and `NextToken`; another filter type is `InvalidParameterException`.
- EC2 `DescribeSpotPriceHistory` answers every instance type offered in the region with the price
  `0.00001` at `2006-01-02`, whatever the window and product. Answered here from the same sample's
  SpotPriceHistory as AWS does: the types, zones (`availability-zone` filter) and product
  descriptions asked for, the price changes between StartTime and EndTime plus the last one
  before StartTime (the price in effect at the start), newest first; types the sample lacks have
  no history (never a made-up price).

- RDS `RestoreDBClusterFromSnapshot` fails (HTTP 500) for a snapshot of a cluster whose master
  password RDS manages, and otherwise copies the source cluster's whole configuration (its
  managed master secret, tags and settings). Replaced here: the snapshot gives the data, engine,
  master user, database name, port and storage encryption, the request the rest; the restored
  cluster has no managed master secret (AWS cannot restore one: ModifyDBCluster turns it on), and
  an identifier in use is `DBClusterAlreadyExistsFault`.
- RDS `RestoreDBInstanceFromDBSnapshot` gives the restored instance a managed master secret
  (moto copies the source's, or honours ManageMasterUserPassword) whatever the engine; AWS applies
  ManageMasterUserPassword to RDS for Oracle only and restores other engines with the snapshot's
  password and no managed secret. Fixed here: no managed secret for a non-Oracle engine
  (ModifyDBInstance turns it on).
- CloudWatch Logs `AssociateKmsKey` and `DisassociateKmsKey` are missing (added: the group's
  `kmsKeyId`, as CreateLogGroup's).
- ElastiCache replication groups ignore `NumCacheClusters` (one member, whatever was asked) and
  their member clusters are not describable (`DescribeCacheClusters` finds none), so the subnet
  group, security groups and engine version that AWS reports there were missing. Fixed here: a
  group gets `NumCacheClusters` members, and each member is listed by `DescribeCacheClusters`
  with what AWS reports for it.

Then it installs the AWS-behaviour layer of localstack/behaviours.py (AWS rules and timings moto
does not reproduce, each switchable with MOODLESTACK_EMULATOR_BEHAVIOURS; `--list` prints them)
and runs moto's own server with the same arguments as `moto_server`. moodlestack's code is
unchanged: it sends the real AWS calls either way. See localstack/README.md for every gap.
"""

import json
import os
import sys
import time
import uuid

from moto.autoscaling.responses import AutoScalingResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.efs.exceptions import FileSystemNotFound
from moto.efs.responses import EFSResponse
from moto.elasticache.exceptions import (
    CacheClusterNotFound,
    CacheSubnetGroupNotFound,
    ReplicationGroupNotFound,
)
from moto.elasticache.models import ElastiCacheBackend, ReplicationGroup
from moto.elasticache.responses import ElastiCacheResponse
from moto.server import main


def _backend_delete_cache_subnet_group(self, cache_subnet_group_name):
    group = self.cache_subnet_groups.pop(cache_subnet_group_name, None)
    if group is None:
        raise CacheSubnetGroupNotFound(cache_subnet_group_name)
    self.tagging_service.delete_all_tags_for_resource(group.arn)
    return group


def _response_delete_cache_subnet_group(self):
    self.elasticache_backend.delete_cache_subnet_group(self._get_param("CacheSubnetGroupName"))
    return EmptyResult()


if not hasattr(ElastiCacheBackend, "delete_cache_subnet_group"):
    ElastiCacheBackend.delete_cache_subnet_group = _backend_delete_cache_subnet_group
if not hasattr(ElastiCacheResponse, "delete_cache_subnet_group"):
    ElastiCacheResponse.delete_cache_subnet_group = _response_delete_cache_subnet_group

_original_replication_group_init = ReplicationGroup.__init__


def _replication_group_init(self, *args, **kwargs):
    wanted = kwargs.get("num_cache_clusters")
    cluster_mode = kwargs.get("cluster_mode") or "disabled"
    if wanted and not kwargs.get("replicas_per_node_group") and cluster_mode == "disabled":
        kwargs["replicas_per_node_group"] = int(wanted) - 1
    _original_replication_group_init(self, *args, **kwargs)


def _member_views(backend):
    """The member clusters of every replication group, as DescribeCacheClusters shows them."""
    views = []
    for group in backend.replication_groups.values():
        for member in group.member_clusters:
            views.append({
                "CacheClusterId": member,
                "ReplicationGroupId": group.replication_group_id,
                "CacheNodeType": group.cache_node_type,
                "Engine": group.engine,
                "EngineVersion": group.engine_version or "7.1",
                "CacheClusterStatus": group.status,
                "NumCacheNodes": 1,
                "CacheSubnetGroupName": group.cache_subnet_group_name,
                "SecurityGroups": [
                    {"SecurityGroupId": sg, "Status": "active"}
                    for sg in (group.security_group_ids or [])
                ],
                "TransitEncryptionEnabled": group.transit_encryption_enabled,
                "AtRestEncryptionEnabled": group.at_rest_encryption_enabled,
                "AuthTokenEnabled": group.auth_token_enabled,
                "ARN": f"arn:aws:elasticache:{backend.region_name}:{backend.account_id}:cluster:{member}",
            })
    return views


_original_describe_cache_clusters = ElastiCacheBackend.describe_cache_clusters


def _describe_cache_clusters(self, cache_cluster_id=None, *args, **kwargs):
    members = _member_views(self)
    if cache_cluster_id:
        found = [m for m in members if m["CacheClusterId"] == cache_cluster_id]
        if found:
            return found
        return _original_describe_cache_clusters(self, cache_cluster_id, *args, **kwargs)
    try:
        own = list(_original_describe_cache_clusters(self, cache_cluster_id, *args, **kwargs))
    except CacheClusterNotFound:
        own = []
    return own + members


if not getattr(ReplicationGroup, "_moodlestack_patched", False):
    ReplicationGroup.__init__ = _replication_group_init
    ReplicationGroup._moodlestack_patched = True
    ElastiCacheBackend.describe_cache_clusters = _describe_cache_clusters

# --- ElastiCache: deletes, modifications, replica counts, reader endpoints; EFS updates ---


_orig_set_members = ReplicationGroup._set_node_members_clusters_disabled


def _set_members_with_reader_endpoint(self, **kwargs):
    result = _orig_set_members(self, **kwargs)
    group = kwargs["node_group"]
    if "reader_endpoint_address" in group:
        group["reader_endpoint"] = {"address": group["reader_endpoint_address"], "port": self.port}
    return result


ReplicationGroup._set_node_members_clusters_disabled = _set_members_with_reader_endpoint

_orig_modify_rg = ElastiCacheResponse.modify_replication_group


def _modify_replication_group(self):
    rg = self.elasticache_backend.replication_groups.get(self._get_param("ReplicationGroupId"))
    if rg is not None:
        version = self._get_param("EngineVersion")
        if version:
            rg.engine_version = version
        sgs = self._get_param("SecurityGroupIds")
        if sgs:
            rg.security_group_ids = list(sgs)
    return _orig_modify_rg(self)


ElastiCacheResponse.modify_replication_group = _modify_replication_group


def _resize(rg, clusters):
    group = rg.node_groups[0]
    members = group["node_group_members"]
    template = dict(members[-1])
    while len(members) > clusters:
        gone = members.pop()
        if gone["cache_cluster_id"] in rg.member_clusters:
            rg.member_clusters.remove(gone["cache_cluster_id"])
    while len(members) < clusters:
        cid = f"{rg.replication_group_id}-{len(members) + 1:0>3}"
        m = dict(template)
        m["cache_cluster_id"] = cid
        m["current_role"] = "replica"
        members.append(m)
        rg.member_clusters.append(cid)


def _replica_count(self):
    rg_id = self._get_param("ReplicationGroupId")
    rg = self.elasticache_backend.replication_groups.get(rg_id)
    if rg is None:
        raise ReplicationGroupNotFound(rg_id)
    _resize(rg, int(self._get_param("NewReplicaCount")) + 1)
    return ActionResult({"ReplicationGroup": rg})


if not hasattr(ElastiCacheResponse, "increase_replica_count"):
    ElastiCacheResponse.increase_replica_count = _replica_count
if not hasattr(ElastiCacheResponse, "decrease_replica_count"):
    ElastiCacheResponse.decrease_replica_count = _replica_count

_orig_delete_rg = ElastiCacheBackend.delete_replication_group


def _delete_replication_group(self, replication_group_id, retain_primary_cluster):
    rg = _orig_delete_rg(self, replication_group_id, retain_primary_cluster)
    self.replication_groups.pop(replication_group_id, None)
    self.tagging_service.delete_all_tags_for_resource(rg.arn)
    return rg


ElastiCacheBackend.delete_replication_group = _delete_replication_group




def _requested_file_system(self):
    """The file system the request's `FileSystemId` names (FileSystemNotFound otherwise)."""
    fs_id = self._get_param("FileSystemId")
    fs = self.efs_backend.file_systems_by_id.get(fs_id)
    if fs is None:
        raise FileSystemNotFound(fs_id)
    return fs


def _update_file_system(self):
    fs = _requested_file_system(self)
    mode = self._get_param("ThroughputMode")
    if mode:
        fs.throughput_mode = mode
    mibps = self._get_param("ProvisionedThroughputInMibps")
    if mibps is not None:
        fs.provisioned_throughput_in_mibps = mibps
    return json.dumps(fs.info_json()), {"status": 202, "Content-Type": "application/json"}


if not hasattr(EFSResponse, "update_file_system"):
    EFSResponse.update_file_system = _update_file_system


def _put_backup_policy(self):
    fs = _requested_file_system(self)
    status = (self._get_param("BackupPolicy") or {}).get("Status")
    fs._backup = status in ("ENABLED", "ENABLING")
    policy = {"Status": "ENABLED" if fs._backup else "DISABLED"}
    return json.dumps({"BackupPolicy": policy}), {"Content-Type": "application/json"}


if not hasattr(EFSResponse, "put_backup_policy"):
    EFSResponse.put_backup_policy = _put_backup_policy


# --- RDS RestoreDBClusterFromSnapshot ---
#
# moto restores a cluster from the whole configuration of the snapshot's source cluster
# (`get_cfg`), which fails (KeyError, HTTP 500) when RDS manages that cluster's master password,
# and would otherwise copy its managed master secret, tags and settings. AWS restores the data,
# the engine, the master user, the database name, the port and the storage encryption (its KMS
# key) from the snapshot, the rest from the request, and RDS does not manage the restored
# cluster's master password (the request cannot ask it to: Aurora takes it into Secrets Manager on
# a create, a modify or a restore from Amazon S3,
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-secrets-manager.html); an
# identifier in use is DBClusterAlreadyExistsFault (RestoreDBClusterFromSnapshot API reference).

from moto.rds.exceptions import DBClusterSnapshotAlreadyExistsError, RDSClientError  # noqa: E402
from moto.rds.models import DBCluster, RDSBackend  # noqa: E402

_CLUSTER_SNAPSHOT_KEEPS = ("engine", "engine_version", "engine_mode", "master_username",
                           "database_name", "port", "storage_encrypted", "kms_key_id",
                           "storage_type", "allocated_storage", "availability_zones")


def _restore_db_cluster_from_snapshot(self, from_snapshot_id, overrides):
    snapshot = self.describe_db_cluster_snapshots(
        db_cluster_identifier=None, db_snapshot_identifier=from_snapshot_id)[0]
    identifier = overrides.get("db_cluster_identifier")
    if identifier in self.clusters:
        raise RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
    source = snapshot.cluster
    props = {k: getattr(source, k, None) for k in _CLUSTER_SNAPSHOT_KEEPS}
    props.update({k: v for k, v in overrides.items()
                  if v is not None and k != "snapshot_identifier"})
    props["manage_master_user_password"] = False
    # The snapshot's password, which nobody reads (moto needs one for a cluster without a
    # managed secret; it never answers it).
    props["master_user_password"] = getattr(source, "_master_user_password", None) or uuid.uuid4().hex
    cluster = DBCluster(self, **props)
    self.clusters[identifier] = cluster
    try:
        cluster.save_automated_backup()
    except DBClusterSnapshotAlreadyExistsError:
        pass  # the deleted source's automated snapshot of this minute (moto names them so)
    return cluster


RDSBackend.restore_db_cluster_from_snapshot = _restore_db_cluster_from_snapshot


# --- RDS RestoreDBInstanceFromDBSnapshot ---
#
# moto copies the source instance's managed master password (a new secret) and honours
# ManageMasterUserPassword for every engine. AWS: "Constraints: Applies to RDS for Oracle only"
# (RestoreDBInstanceFromDBSnapshot API reference,
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceFromDBSnapshot.html);
# an instance of another engine is restored with the snapshot's master password and no managed
# secret (hashicorp/terraform-provider-aws#31509): ModifyDBInstance ManageMasterUserPassword=true
# turns it on afterwards (moto's own: it makes a new secret).

_moto_restore_db_instance = RDSBackend.restore_db_instance_from_db_snapshot


def _restore_db_instance_from_db_snapshot(self, from_snapshot_id, overrides):
    db = _moto_restore_db_instance(self, from_snapshot_id, overrides)
    if not db.engine.startswith("oracle") and db.manage_master_user_password:
        db.update(manage_master_user_password=False)  # the secret moto made is force-deleted
        # The snapshot's password, which nobody reads (moto never answers it).
        db.master_user_password = uuid.uuid4().hex
    return db


RDSBackend.restore_db_instance_from_db_snapshot = _restore_db_instance_from_db_snapshot


# --- Auto Scaling instance refreshes ---

REFRESH_SECONDS = float(os.environ.get("MOODLESTACK_EMULATOR_REFRESH_SECONDS", "10"))
_INSTANCE_REFRESHES = {}


class InstanceRefreshInProgress(ServiceException):
    code = "InstanceRefreshInProgress"


def _refreshes(group):
    refreshes = _INSTANCE_REFRESHES.setdefault(group, [])
    for r in refreshes:
        if r["Status"] == "InProgress" and time.time() - r["_started"] >= REFRESH_SECONDS:
            r["Status"] = "Successful"
            r["PercentageComplete"] = 100
    return refreshes


def _public(refresh):
    return {k: v for k, v in refresh.items() if not k.startswith("_")}


def _response_start_instance_refresh(self):
    group = self._get_param("AutoScalingGroupName")
    refreshes = _refreshes(group)
    if any(r["Status"] in ("Pending", "InProgress") for r in refreshes):
        raise InstanceRefreshInProgress(
            "An Instance Refresh is already in progress and blocks the execution of this "
            "Instance Refresh."
        )
    refresh = {
        "InstanceRefreshId": str(uuid.uuid4()),
        "AutoScalingGroupName": group,
        "Status": "InProgress",
        "PercentageComplete": 0,
        "Preferences": self._get_param("Preferences", {}),
        "_started": time.time(),
    }
    refreshes.insert(0, refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _response_describe_instance_refreshes(self):
    group = self._get_param("AutoScalingGroupName")
    return ActionResult({"InstanceRefreshes": [_public(r) for r in _refreshes(group)]})


class ActiveInstanceRefreshNotFound(ServiceException):
    code = "ActiveInstanceRefreshNotFound"


def _response_cancel_instance_refresh(self):
    group = self._get_param("AutoScalingGroupName")
    running = [r for r in _refreshes(group) if r["Status"] in ("Pending", "InProgress")]
    if not running:
        raise ActiveInstanceRefreshNotFound("No in progress or pending Instance Refresh found for "
                                            "Auto Scaling group %s" % group)
    refresh = running[0]
    refresh["Status"] = "Cancelled"
    refresh["StatusReason"] = "Instance refresh was cancelled by a user request."
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


if not hasattr(AutoScalingResponse, "cancel_instance_refresh"):
    AutoScalingResponse.cancel_instance_refresh = _response_cancel_instance_refresh
if not hasattr(AutoScalingResponse, "start_instance_refresh"):
    AutoScalingResponse.start_instance_refresh = _response_start_instance_refresh
if not hasattr(AutoScalingResponse, "describe_instance_refreshes"):
    AutoScalingResponse.describe_instance_refreshes = _response_describe_instance_refreshes



# --- EC2: a launch template's tags as they are now ---
#
# moto copies a launch template's tags once, when it is created, so `CreateTags`/`DeleteTags` on
# it show in `DescribeTags` but never in `DescribeLaunchTemplates` (AWS reports the template's
# current tags there: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplate.html,
# `Tags`). Here the template's `tags` are read from the tag store at every describe.

from moto.ec2.models.launch_templates import LaunchTemplate as _LaunchTemplate  # noqa: E402

_LaunchTemplate.tags = property(lambda self: self.get_tags(), lambda self, value: None)

# --- SSM Run Command: an opt-in hook that really runs AWS-RunShellScript (see README) ---
#
# moto records SendCommand and answers every invocation `Success`, exit code 0, no output: it
# runs nothing. With MOODLESTACK_EMULATOR_RUN_COMMAND=<program>, an `AWS-RunShellScript` command
# is run here: its `commands` are written to a script file and `<program> <script file>` runs on
# this host, as this server's user, once per instance (MOODLESTACK_INSTANCE_ID in its
# environment). GetCommandInvocation then reports it as AWS does: `InProgress` (exit code -1,
# the output so far) while it runs, `Success` (exit code 0) or `Failed` (its exit code) after,
# `TimedOut` when it outlives `executionTimeout` (killed); standard output cut at 24,000
# characters and standard error at 8,000, as AWS keeps them. Other documents keep moto's answer.

import subprocess  # noqa: E402
import tempfile  # noqa: E402

from moto.ssm.models import Command as SsmCommand  # noqa: E402

RUN_COMMAND = os.environ.get("MOODLESTACK_EMULATOR_RUN_COMMAND", "")
_RUNS = {}  # (command id, instance id) -> {"proc", "out", "err", "deadline"}


def _read(path, limit):
    with open(path, "rb") as f:
        return f.read(limit * 4).decode("utf-8", "replace")[:limit]


def _refresh(command, invocation):
    run = _RUNS.get((command.command_id, invocation["InstanceId"]))
    if run is None:
        return
    proc = run["proc"]
    code = proc.poll()
    if code is None and time.monotonic() > run["deadline"]:
        proc.kill()
        proc.wait()
        run["timed_out"] = True
        code = proc.returncode
    invocation["StandardOutputContent"] = _read(run["out"], 24000)
    invocation["StandardErrorContent"] = _read(run["err"], 8000)
    if code is None:
        status, response = "InProgress", -1
    elif run.get("timed_out"):
        status, response = "TimedOut", -1
    elif code == 0:
        status, response = "Success", 0
    else:
        status, response = "Failed", code if code > 0 else -1
    invocation["Status"] = status
    invocation["StatusDetails"] = status
    invocation["ResponseCode"] = response


_original_command_init = SsmCommand.__init__


def _command_init(self, *args, **kwargs):
    _original_command_init(self, *args, **kwargs)
    if not RUN_COMMAND or self.document_name != "AWS-RunShellScript":
        return
    commands = (self.parameters or {}).get("commands") or []
    timeout = int(((self.parameters or {}).get("executionTimeout") or ["3600"])[0])
    workdir = tempfile.mkdtemp(prefix="moodlestack-runcommand-")
    script = os.path.join(workdir, "_script.sh")
    with open(script, "w") as f:
        f.write("\n".join(commands) + "\n")
    for invocation in self.invocations:
        iid = invocation["InstanceId"]
        out = os.path.join(workdir, f"{iid}.stdout")
        err = os.path.join(workdir, f"{iid}.stderr")
        proc = subprocess.Popen(
            [RUN_COMMAND, script],
            stdin=subprocess.DEVNULL,
            stdout=open(out, "wb"),
            stderr=open(err, "wb"),
            env={**os.environ, "MOODLESTACK_INSTANCE_ID": iid},
            cwd=workdir,
        )
        _RUNS[(self.command_id, iid)] = {
            "proc": proc,
            "out": out,
            "err": err,
            "deadline": time.monotonic() + timeout,
        }
        _refresh(self, invocation)


_original_get_invocation = SsmCommand.get_invocation


def _get_invocation(self, instance_id, plugin_name):
    invocation = _original_get_invocation(self, instance_id, plugin_name)
    _refresh(self, invocation)
    return invocation


SsmCommand.__init__ = _command_init
SsmCommand.get_invocation = _get_invocation
# --- AWS Backup: selections, plan updates, on-demand backup jobs, recovery points ---
#
# moto 5.2.5 serves vaults and plans only. Added with AWS's shapes (the Backup API reference):
# CreateBackupSelection / GetBackupSelection / ListBackupSelections / DeleteBackupSelection,
# UpdateBackupPlan (a new VersionId), StartBackupJob / DescribeBackupJob / ListBackupJobs (a job
# is CREATED, RUNNING, then COMPLETED after BACKUP_JOB_SECONDS; its recovery point is in its vault
# from the start, CREATING, tagged with the job's RecoveryPointTags, and COMPLETED with the job),
# ListRecoveryPointsByBackupVault, DescribeRecoveryPoint and DeleteRecoveryPoint; StartRestoreJob /
# DescribeRestoreJob / ListRestoreJobs (PENDING, RUNNING, COMPLETED; EFS into its file system, or
# into a new one: `newFileSystem`, made in moto's EFS backend when the job runs). Fixed: ListTags
# of a path without the trailing slash (the Rust SDK's) read the ARN from the wrong part; a deleted
# plan's name may be used again (moto refuses it for ever); DeleteBackupVault refuses a vault that
# holds recovery points (AWS: InvalidRequestException) and DeleteBackupPlan one that still has
# selections (AWS: "Related backup plan selections must be deleted prior to backup plan
# deletion").

from moto.backup import urls as _backup_urls  # noqa: E402
from moto.backup.exceptions import (  # noqa: E402
    AlreadyExistsException as _BackupExists,
    InvalidRequestException as _BackupInvalid,
    ResourceNotFoundException as _BackupNotFound,
)
from moto.backup.models import BackupBackend, Plan  # noqa: E402
from moto.backup.responses import BackupResponse  # noqa: E402
from urllib.parse import unquote  # noqa: E402

BACKUP_JOB_SECONDS = float(os.environ.get("MOODLESTACK_EMULATOR_BACKUP_JOB_SECONDS", "2"))

_backup_urls.url_paths.update({
    "{0}/backup/plans/(?P<plan>[^/]+)/selections/$": _backup_urls.response.dispatch,
    "{0}/backup/plans/(?P<plan>[^/]+)/selections/(?P<selection>[^/]+)$": _backup_urls.response.dispatch,
    "{0}/backup-jobs/?$": _backup_urls.response.dispatch,
    "{0}/backup-jobs/(?P<job>[^/]+)$": _backup_urls.response.dispatch,
    "{0}/restore-jobs/?$": _backup_urls.response.dispatch,
    "{0}/restore-jobs/(?P<job>[^/]+)$": _backup_urls.response.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/$": _backup_urls.response.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/(?P<arn>.+)$": _backup_urls.response.dispatch,
})


def _backup_state(backend):
    if not hasattr(backend, "_ms_selections"):
        backend._ms_selections = {}  # plan id -> {selection id: dict}
        backend._ms_jobs = {}  # job id -> dict
        backend._ms_points = {}  # vault name -> {recovery point arn: dict}
        backend._ms_restores = {}  # restore job id -> dict
    return backend


def _backup_body(resp):
    return json.loads(resp.body or "{}")


def _path_part(resp, after):
    parts = resp.path.rstrip("/").split("/")
    return unquote(parts[parts.index(after) + 1])


def _jobs_progress(backend):
    """Moves the backup jobs on as AWS does: CREATED, then RUNNING (the first fifth of
    BACKUP_JOB_SECONDS), then COMPLETED; the job's recovery point is CREATING from the start and
    COMPLETED with its job."""
    now = time.time()
    for job in backend._ms_jobs.values():
        elapsed = now - job["_started"]
        if job["State"] == "CREATED" and elapsed >= BACKUP_JOB_SECONDS / 5:
            job["State"] = "RUNNING"
            job["PercentDone"] = "50.0"
        if job["State"] == "RUNNING" and elapsed >= BACKUP_JOB_SECONDS:
            job["State"] = "COMPLETED"
            job["PercentDone"] = "100.0"
            job["CompletionDate"] = now
            point = backend._ms_points.get(job["BackupVaultName"], {}).get(job["RecoveryPointArn"])
            if point is not None:
                point["Status"] = "COMPLETED"
                point["CompletionDate"] = now


def _add_recovery_point(backend, job):
    """The job's recovery point, CREATING, in its vault, tagged with the job's RecoveryPointTags
    (AWS lists a recovery point from the start of its job: "CREATING status indicates that an
    Backup job has been initiated for a resource", DescribeRecoveryPoint)."""
    point = {
        "RecoveryPointArn": job["RecoveryPointArn"],
        "BackupVaultName": job["BackupVaultName"],
        "BackupVaultArn": job["BackupVaultArn"],
        "ResourceArn": job["ResourceArn"],
        "ResourceType": job["ResourceType"],
        "CreationDate": job["CreationDate"],
        "Status": "CREATING",
        "IamRoleArn": job["IamRoleArn"],
        "CreatedBy": {},
    }
    backend._ms_points.setdefault(job["BackupVaultName"], {})[point["RecoveryPointArn"]] = point
    vault = backend.vaults.get(job["BackupVaultName"])
    if vault is not None:
        vault.num_of_recovery_points += 1
    if job["_tags"]:
        backend.tag_resource(point["RecoveryPointArn"], job["_tags"])


def _resource_type(arn):
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    if service == "elasticfilesystem":
        return "EFS"
    if service == "rds":
        return "Aurora" if ":cluster:" in arn else "RDS"
    return service.upper() or "UNKNOWN"


def _create_backup_selection(self):
    backend = _backup_state(self.backup_backend)
    plan_id = _path_part(self, "plans")
    if plan_id not in backend.plans or backend.plans[plan_id].deletion_date is not None:
        raise _BackupNotFound(msg=f"Failed reading Backup plan with provided version {plan_id}")
    body = _backup_body(self)
    selection = body.get("BackupSelection") or {}
    sid = str(uuid.uuid4())
    backend._ms_selections.setdefault(plan_id, {})[sid] = {
        "SelectionId": sid,
        "BackupPlanId": plan_id,
        "BackupSelection": selection,
        "CreationDate": time.time(),
        "CreatorRequestId": body.get("CreatorRequestId"),
    }
    return json.dumps({"SelectionId": sid, "BackupPlanId": plan_id, "CreationDate": time.time()})


def _selection(self):
    backend = _backup_state(self.backup_backend)
    plan_id = _path_part(self, "plans")
    sid = _path_part(self, "selections")
    found = backend._ms_selections.get(plan_id, {}).get(sid)
    if found is None:
        raise _BackupNotFound(msg=f"Failed reading Backup selection {sid} of plan {plan_id}")
    return backend, plan_id, sid, found


def _get_backup_selection(self):
    _, _, _, found = _selection(self)
    return json.dumps({k: v for k, v in found.items() if v is not None})


def _delete_backup_selection(self):
    backend, plan_id, sid, _ = _selection(self)
    backend._ms_selections[plan_id].pop(sid)
    return "{}"


def _list_backup_selections(self):
    backend = _backup_state(self.backup_backend)
    plan_id = _path_part(self, "plans")
    if plan_id not in backend.plans:
        raise _BackupNotFound(msg=f"Failed reading Backup plan with provided version {plan_id}")
    items = [{
        "SelectionId": s["SelectionId"],
        "SelectionName": s["BackupSelection"].get("SelectionName"),
        "BackupPlanId": plan_id,
        "CreationDate": s["CreationDate"],
        "IamRoleArn": s["BackupSelection"].get("IamRoleArn"),
    } for s in backend._ms_selections.get(plan_id, {}).values()]
    return json.dumps({"BackupSelectionsList": items})


def _update_backup_plan(self):
    backend = self.backup_backend
    plan_id = _path_part(self, "plans")
    plan = backend.plans.get(plan_id)
    if plan is None or plan.deletion_date is not None:
        raise _BackupNotFound(msg="Failed reading Backup plan with provided version")
    new = Plan(backup_plan=_backup_body(self)["BackupPlan"], creator_request_id=plan.creator_request_id,
               backend=backend)
    plan.backup_plan = new.backup_plan
    plan.version_id = new.version_id
    plan.advanced_backup_settings = new.advanced_backup_settings
    return json.dumps(plan.to_dict())


_orig_create_backup_plan = BackupBackend.create_backup_plan


def _create_backup_plan(self, backup_plan, backup_plan_tags, creator_request_id):
    live = [p.backup_plan["BackupPlanName"] for p in self.plans.values() if p.deletion_date is None]
    if backup_plan["BackupPlanName"] in live:
        raise _BackupExists(msg="Backup plan with the same plan document already exists")
    saved = self.plans
    self.plans = {k: p for k, p in saved.items() if p.deletion_date is None}
    try:
        plan = _orig_create_backup_plan(self, backup_plan, backup_plan_tags, creator_request_id)
    finally:
        gone = {k: p for k, p in saved.items() if k not in self.plans}
        self.plans.update(gone)
    return plan


_orig_delete_backup_plan = BackupBackend.delete_backup_plan


def _delete_backup_plan(self, backup_plan_id):
    if _backup_state(self)._ms_selections.get(backup_plan_id):
        raise _BackupInvalid(msg="Related backup plan selections must be deleted prior to backup "
                                 "plan deletion")
    return _orig_delete_backup_plan(self, backup_plan_id)


def _delete_backup_vault(self, backup_vault_name):
    _jobs_progress(_backup_state(self))
    if backup_vault_name not in self.vaults:
        raise _BackupNotFound(msg=f"Backup vault {backup_vault_name} not found")
    if self._ms_points.get(backup_vault_name):
        raise _BackupInvalid(msg="Backup vault cannot be deleted because it contains recovery "
                                 "points")
    self.vaults.pop(backup_vault_name, None)
    self.tagger.delete_all_tags_for_resource(
        f"arn:aws:backup:{self.region_name}:{self.account_id}:backup-vault:{backup_vault_name}")


def _start_backup_job(self):
    backend = _backup_state(self.backup_backend)
    _jobs_progress(backend)
    body = _backup_body(self)
    vault_name = body.get("BackupVaultName")
    vault = backend.vaults.get(vault_name)
    if vault is None:
        raise _BackupNotFound(msg=f"Backup vault {vault_name} not found")
    token = body.get("IdempotencyToken")
    if token:
        for job in backend._ms_jobs.values():
            if job["_token"] == token:
                return json.dumps({"BackupJobId": job["BackupJobId"],
                                   "RecoveryPointArn": job["RecoveryPointArn"],
                                   "CreationDate": job["CreationDate"]})
    job_id = str(uuid.uuid4()).upper()
    arn = body.get("ResourceArn")
    kind = _resource_type(arn)
    if kind in ("RDS", "Aurora"):
        point = (f"arn:aws:rds:{backend.region_name}:{backend.account_id}:"
                 f"{'cluster-snapshot' if kind == 'Aurora' else 'snapshot'}:awsbackup:job-{job_id.lower()}")
    else:
        point = f"arn:aws:backup:{backend.region_name}:{backend.account_id}:recovery-point:{uuid.uuid4()}"
    now = time.time()
    backend._ms_jobs[job_id] = {
        "BackupJobId": job_id,
        "BackupVaultName": vault_name,
        "BackupVaultArn": vault.backup_vault_arn,
        "RecoveryPointArn": point,
        "ResourceArn": arn,
        "ResourceType": kind,
        "IamRoleArn": body.get("IamRoleArn"),
        "CreationDate": now,
        "State": "CREATED",
        "PercentDone": "0.0",
        "_started": now,
        "_token": token,
        "_tags": body.get("RecoveryPointTags") or {},
    }
    _add_recovery_point(backend, backend._ms_jobs[job_id])
    return json.dumps({"BackupJobId": job_id, "RecoveryPointArn": point, "CreationDate": now})


def _job_calls(store, progress, path, what, listed, filters):
    """The Describe and List calls of one kind of job kept in `backend.<store>` and moved on by
    `progress`: Describe reads the job whose id follows `path` in the URL (`<what> <id> not
    found` otherwise), List answers `{listed: [...]}` with the jobs whose fields equal the query
    parameters `filters` names (field -> parameter) that the request gives. Both show the job
    without its `_` fields."""

    def public(job):
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def describe(self):
        backend = _backup_state(self.backup_backend)
        progress(backend)
        job_id = _path_part(self, path)
        job = getattr(backend, store).get(job_id)
        if job is None:
            raise _BackupNotFound(msg=f"{what} {job_id} not found")
        return json.dumps(public(job))

    def list_jobs(self):
        backend = _backup_state(self.backup_backend)
        progress(backend)
        query = self.querystring
        want = {field: (query.get(param) or [None])[0] for field, param in filters.items()}
        jobs = [public(job) for job in getattr(backend, store).values()
                if all(v is None or job.get(k) == v for k, v in want.items())]
        return json.dumps({listed: jobs})

    return describe, list_jobs


_describe_backup_job, _list_backup_jobs = _job_calls(
    "_ms_jobs", _jobs_progress, "backup-jobs", "Backup job", "BackupJobs",
    {"ResourceArn": "resourceArn", "BackupVaultName": "backupVaultName", "State": "state",
     "ResourceType": "resourceType"})


def _describe_recovery_point(self):
    backend = _backup_state(self.backup_backend)
    _jobs_progress(backend)
    vault_name = _path_part(self, "backup-vaults")
    arn = unquote(self.path.split("/recovery-points/", 1)[1]).rstrip("/")
    point = backend._ms_points.get(vault_name, {}).get(arn)
    if point is None:
        raise _BackupNotFound(msg=f"Recovery point {arn} not found")
    return json.dumps(point)


def _start_restore_job(self):
    """StartRestoreJob of a recovery point of the emulator's vaults: PENDING, RUNNING, then
    COMPLETED after BACKUP_JOB_SECONDS. An EFS restore into its file system
    (`newFileSystem: false`) reports that file system as the created resource, as AWS does. One
    into a new file system (`newFileSystem: true`, what `files.restore_from` does) makes a real
    file system in moto's EFS backend when the job runs, with the metadata's CreationToken,
    Encrypted, KmsKeyId and PerformanceMode and no tags (`creating` first, as every new file
    system on the emulator), and reports its ARN as `CreatedResourceArn` once COMPLETED; a
    CreationToken already in use fails the job (AWS Backup checks the metadata in the job, not in
    the call). The emulator holds no file data, so nothing is copied."""
    backend = _backup_state(self.backup_backend)
    _jobs_progress(backend)
    body = _backup_body(self)
    arn = body.get("RecoveryPointArn")
    point = next((p for points in backend._ms_points.values() for p in points.values()
                  if p["RecoveryPointArn"] == arn), None)
    if point is None:
        raise _BackupNotFound(msg=f"Recovery point {arn} not found")
    if point["Status"] != "COMPLETED":
        raise _BackupInvalid(msg=f"Recovery point {arn} is not in COMPLETED state")
    if point["ResourceType"] != "EFS":
        raise _BackupInvalid(msg="the emulator restores EFS recovery points only")
    meta = body.get("Metadata") or {}
    new_fs = None
    if meta.get("newFileSystem", "true") == "false":
        created = point["ResourceArn"].rsplit("/", 1)[0] + "/" + meta.get("file-system-id", "")
    else:
        created = None
        new_fs = {
            "creation_token": meta.get("CreationToken", ""),
            "encrypted": meta.get("Encrypted", "false").lower() == "true",
            "kms_key_id": meta.get("KmsKeyId"),
            "performance_mode": meta.get("PerformanceMode", "generalPurpose"),
        }
    token = body.get("IdempotencyToken")
    for job in backend._ms_restores.values():
        if token and job["_token"] == token:
            return json.dumps({"RestoreJobId": job["RestoreJobId"]})
    job_id = str(uuid.uuid4()).upper()
    backend._ms_restores[job_id] = {
        "AccountId": backend.account_id,
        "RestoreJobId": job_id,
        "RecoveryPointArn": arn,
        "CreationDate": time.time(),
        "Status": "PENDING",
        "PercentDone": "0.0",
        "IamRoleArn": body.get("IamRoleArn"),
        "ResourceType": point["ResourceType"],
        "_created": created,
        "_new_fs": new_fs,
        "_failed": None,
        "_started": time.time(),
        "_token": token,
    }
    return json.dumps({"RestoreJobId": job_id})


def _restore_new_file_system(backend, job):
    """The new file system of an EFS restore (`newFileSystem: true`), made as the job starts
    running; the job fails, as AWS's does, when the metadata cannot make one."""
    from moto.efs.exceptions import FileSystemAlreadyExists
    from moto.efs.models import efs_backends

    spec = job["_new_fs"]
    if not spec["creation_token"]:
        job["_failed"] = "CreationToken is required to restore into a new file system"
        return
    efs = efs_backends[backend.account_id][backend.region_name]
    try:
        fs = efs.create_file_system(
            creation_token=spec["creation_token"], performance_mode=spec["performance_mode"],
            encrypted=spec["encrypted"], kms_key_id=spec["kms_key_id"], throughput_mode="bursting",
            provisioned_throughput_in_mibps=None, availability_zone_name=None, backup=False,
            tags=[])
    except FileSystemAlreadyExists:
        job["_failed"] = (f"File system with creation token {spec['creation_token']} already "
                          "exists (FileSystemAlreadyExists)")
        return
    job["_created"] = fs.file_system_arn


def _restores_progress(backend):
    now = time.time()
    for job in backend._ms_restores.values():
        elapsed = now - job["_started"]
        if job["Status"] == "PENDING" and elapsed >= BACKUP_JOB_SECONDS / 5:
            job["Status"] = "RUNNING"
            if job["_new_fs"] is not None:
                _restore_new_file_system(backend, job)
        if job["Status"] == "RUNNING" and job["_failed"]:
            job["Status"] = "FAILED"
            job["StatusMessage"] = job["_failed"]
            job["CompletionDate"] = now
        if job["Status"] == "RUNNING" and elapsed >= BACKUP_JOB_SECONDS:
            job["Status"] = "COMPLETED"
            job["PercentDone"] = "100.0"
            job["CompletionDate"] = now
            job["CreatedResourceArn"] = job["_created"]


_describe_restore_job, _list_restore_jobs = _job_calls(
    "_ms_restores", _restores_progress, "restore-jobs", "Restore job", "RestoreJobs",
    {"Status": "status", "ResourceType": "resourceType"})


def _list_tags(self):
    # The AWS SDKs of the current API model send `GET /tags/{ResourceArn}` without the trailing
    # slash botocore's older model has; moto reads the ARN from the second-last path part.
    arn = unquote(self.path.split("/tags/", 1)[1]).rstrip("/")
    return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=arn)})


def _list_recovery_points_by_backup_vault(self):
    backend = _backup_state(self.backup_backend)
    _jobs_progress(backend)
    vault_name = _path_part(self, "backup-vaults")
    if vault_name not in backend.vaults:
        raise _BackupNotFound(msg=f"Backup vault {vault_name} not found")
    points = list(backend._ms_points.get(vault_name, {}).values())
    return json.dumps({"RecoveryPoints": points})


def _delete_recovery_point(self):
    backend = _backup_state(self.backup_backend)
    _jobs_progress(backend)
    vault_name = _path_part(self, "backup-vaults")
    arn = unquote(self.path.split("/recovery-points/", 1)[1]).rstrip("/")
    points = backend._ms_points.get(vault_name, {})
    if points.pop(arn, None) is None:
        raise _BackupNotFound(msg=f"Recovery point {arn} not found")
    backend.vaults[vault_name].num_of_recovery_points -= 1
    backend.tagger.delete_all_tags_for_resource(arn)
    return "{}"


BackupResponse.list_tags = _list_tags
BackupBackend.create_backup_plan = _create_backup_plan
BackupBackend.delete_backup_plan = _delete_backup_plan
BackupBackend.delete_backup_vault = _delete_backup_vault
for _name, _fn in {
    "create_backup_selection": _create_backup_selection,
    "get_backup_selection": _get_backup_selection,
    "delete_backup_selection": _delete_backup_selection,
    "list_backup_selections": _list_backup_selections,
    "update_backup_plan": _update_backup_plan,
    "start_backup_job": _start_backup_job,
    "describe_backup_job": _describe_backup_job,
    "list_recovery_points_by_backup_vault": _list_recovery_points_by_backup_vault,
    "describe_recovery_point": _describe_recovery_point,
    "list_backup_jobs": _list_backup_jobs,
    "start_restore_job": _start_restore_job,
    "describe_restore_job": _describe_restore_job,
    "list_restore_jobs": _list_restore_jobs,
    "delete_recovery_point": _delete_recovery_point,
}.items():
    if not hasattr(BackupResponse, _name):
        setattr(BackupResponse, _name, _fn)

# --- Prices: the Price List API (missing) and the Spot price history (a constant in moto) ---

PRICES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "price-list.json")
_PRICES = {}


def _prices():
    if not _PRICES:
        with open(PRICES, encoding="utf-8") as f:
            _PRICES.update(json.load(f))
    return _PRICES


class PricingError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _product_fields(doc):
    """The fields GetProducts filters on: the product's attributes, its family and sku, and
    the service code."""
    product = doc.get("product", {})
    fields = dict(product.get("attributes", {}))
    fields["productFamily"] = product.get("productFamily", "")
    fields["sku"] = product.get("sku", "")
    fields["servicecode"] = doc.get("serviceCode", "")
    return fields


def get_products(request):
    """AWSPriceListService.GetProducts over the sample: the request's JSON body -> the answer."""
    service = request.get("ServiceCode")
    if not service:
        raise PricingError("InvalidParameterException", "ServiceCode is required")
    filters = request.get("Filters") or []
    for f in filters:
        if f.get("Type") != "TERM_MATCH":
            raise PricingError(
                "InvalidParameterException",
                f"Filter type {f.get('Type')!r} is not supported here (TERM_MATCH)",
            )
    try:
        size = int(request.get("MaxResults") or 100)
        start = int(request.get("NextToken") or 0)
    except ValueError:
        raise PricingError("InvalidNextTokenException", "The NextToken is not valid")
    if not 1 <= size <= 100:
        raise PricingError("InvalidParameterException", "MaxResults must be between 1 and 100")
    matches = []
    for text in _prices()["PriceList"]:
        doc = json.loads(text)
        if doc.get("serviceCode") != service:
            continue
        fields = _product_fields(doc)
        if all(fields.get(f.get("Field")) == f.get("Value") for f in filters):
            matches.append(text)
    answer = {"FormatVersion": request.get("FormatVersion") or "aws_v1",
              "PriceList": matches[start:start + size]}
    if start + size < len(matches):
        answer["NextToken"] = str(start + size)
    return answer


def _pricing_app(environ, start_response):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if target != "AWSPriceListService.GetProducts":
            raise PricingError("UnknownOperationException", f"{target} is not emulated")
        status, answer = "200 OK", get_products(body)
    except PricingError as e:
        status, answer = "400 Bad Request", {"__type": e.code, "message": e.message}
    data = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"),
                            ("Content-Length", str(len(data))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]


from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

_original_dispatch = DomainDispatcherApplication.__call__


def _dispatch(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AWSPriceListService."):
        return _pricing_app(environ, start_response)
    return _original_dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch


def _epoch(text):
    """Seconds since the epoch of an ISO 8601 time (`2026-11-18T06:00:00.000Z`)."""
    from datetime import datetime, timezone

    if isinstance(text, (int, float)):
        return float(text)
    if hasattr(text, "timestamp"):
        return text.timestamp() if text.tzinfo else text.replace(tzinfo=timezone.utc).timestamp()
    t = str(text).replace("Z", "+00:00")
    return datetime.fromisoformat(t).timestamp()


def spot_price_history(region, instance_types, zones, products, start, end):
    """The sample's Spot price changes as DescribeSpotPriceHistory answers them: per type, zone
    and product, those between `start` and `end` and the last one before `start`, newest first."""
    series = {}
    for p in _prices()["SpotPriceHistory"]:
        if not p["AvailabilityZone"].startswith(region):
            continue
        if instance_types and p["InstanceType"] not in instance_types:
            continue
        if zones and p["AvailabilityZone"] not in zones:
            continue
        if products and p["ProductDescription"] not in products:
            continue
        key = (p["InstanceType"], p["AvailabilityZone"], p["ProductDescription"])
        series.setdefault(key, []).append(p)
    out = []
    for points in series.values():
        points = sorted(points, key=lambda p: _epoch(p["Timestamp"]))
        before = [p for p in points if start is not None and _epoch(p["Timestamp"]) < start]
        within = [p for p in points
                  if (start is None or _epoch(p["Timestamp"]) >= start)
                  and (end is None or _epoch(p["Timestamp"]) <= end)]
        out.extend(within + before[-1:])
    return sorted(out, key=lambda p: _epoch(p["Timestamp"]), reverse=True)


from moto.ec2.responses.spot_instances import SpotInstances as _SpotInstances  # noqa: E402


def _describe_spot_price_history(self):
    filters = self._filters_from_querystring()
    start = self._get_param("StartTime")
    end = self._get_param("EndTime")
    zones = list(filters.get("availability-zone", []))
    if self._get_param("AvailabilityZone"):
        zones.append(self._get_param("AvailabilityZone"))
    history = spot_price_history(
        self.region,
        list(self._get_param("InstanceTypes", []) or []) + list(filters.get("instance-type", [])),
        zones,
        list(self._get_param("ProductDescriptions", []) or [])
        + list(filters.get("product-description", [])),
        None if start is None else _epoch(start),
        None if end is None else _epoch(end),
    )
    return ActionResult({"SpotPriceHistory": history})


_SpotInstances.describe_spot_price_history = _describe_spot_price_history

# --- CloudWatch Logs: a log group's KMS key after its creation ---
#
# moto stores `kmsKeyId` from CreateLogGroup but lacks AssociateKmsKey and DisassociateKmsKey
# (HTTP 500). AWS: AssociateKmsKey sets the group's key (an unknown group is
# ResourceNotFoundException), DisassociateKmsKey removes it; DescribeLogGroups reports it as
# `kmsKeyId`. https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_AssociateKmsKey.html

from moto.logs.exceptions import ResourceNotFoundException as _LogsNotFound  # noqa: E402
from moto.logs.responses import LogsResponse  # noqa: E402


def _logs_group(self):
    group = self.logs_backend.groups.get(self._get_param("logGroupName"))
    if group is None:
        raise _LogsNotFound()
    return group


def _associate_kms_key(self):
    _logs_group(self).kms_key_id = self._get_param("kmsKeyId")
    return ""


def _disassociate_kms_key(self):
    _logs_group(self).kms_key_id = None
    return ""


for _name, _fn in {
    "associate_kms_key": _associate_kms_key,
    "disassociate_kms_key": _disassociate_kms_key,
}.items():
    if not hasattr(LogsResponse, _name):
        setattr(LogsResponse, _name, _fn)

# --- TCP_NODELAY on moto's connections ---
# werkzeug's request handler writes a response's headers and its body (or each chunk) in
# separate writes. With Nagle's algorithm on, a write waits until the client acknowledges the
# one before, and a client in delayed-ACK mode (any kept-alive connection: the SDK keeps them)
# acknowledges after 40 ms. Every answer on a reused connection came 40 ms late, a delay AWS's
# endpoints do not add; the handler sets TCP_NODELAY, as socketserver offers.
from moto.moto_server.werkzeug_app import MotoRequestHandler  # noqa: E402

MotoRequestHandler.disable_nagle_algorithm = True

# --- the AWS-behaviour layer (localstack/behaviours.py, switchable) ---

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import behaviours  # noqa: E402

behaviours.install()


def _exit_on_stdin_eof():
    """Stops the server when its standard input closes (`--exit-on-stdin-eof`): the
    integration tests keep one server for a whole test binary and this ends it with the binary."""
    import threading

    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    if "--list" in sys.argv[1:]:
        print(behaviours.listing())
        sys.exit(0)
    args = sys.argv[1:]
    if "--exit-on-stdin-eof" in args:
        args.remove("--exit-on-stdin-eof")
        _exit_on_stdin_eof()
    sys.exit(main(args))
