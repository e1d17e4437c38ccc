"""AWS behaviours moto 5.2.5 does not reproduce, switchable one by one.

Imported by localstack/moto_server.py before moto's server starts. Each behaviour is named in
BEHAVIOURS (with whether it is on by default and the AWS documentation that states it);
localstack/README.md has the same table. Choose them with

    MOODLESTACK_EMULATOR_BEHAVIOURS=default|all|none|name,name,-name

read left to right from the default set: `all`, `none` and `default` reset the set, `name` adds
one, `-name` removes one (so `none,rds-secret-tags` is that one alone). Timings:

    MOODLESTACK_EMULATOR_DELAY_MS        how long a create/modify stays in its intermediate state
                                         (`creating`, `pending`, `modifying`); default 1000
    MOODLESTACK_EMULATOR_CONSISTENCY_MS  how long a just-created EC2 resource is invisible to
                                         describes, and a just-deleted one still listed;
                                         default 500

`python localstack/moto_server.py --list` prints the table with what is on.
"""

import base64
import binascii
import functools
import math
import os
import re
import sys
import threading
import time

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse

# name -> (on by default, what it does, AWS source). Off by default: what current moodlestack code
# does not survive yet (localstack/README.md names the failing test and what it means).
BEHAVIOURS = {
    "validation": (
        True,
        "requests are checked against the botocore service model (required members, lengths, "
        "patterns, enums, ranges) and AWS limits moto skips (user data <= 16 KB raw; ELBv2 and "
        "ElastiCache name lengths); refused with the service's error code",
        "botocore service models (the ones moto itself uses); "
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html "
        "(\"User data is limited to 16 KB, in raw form, before it is base64-encoded\"); "
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html "
        "(Name: at most 32 characters, alphanumerics and hyphens, not starting or ending with a hyphen)",
    ),
    "tag-filters": (
        True,
        "EC2 DescribeNatGateways honours tag:KEY, tag-key and tag-value filters (moto ignores "
        "them; the other describes moodlestack filters by tag already honour them)",
        "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNatGateways.html "
        "(Filter: tag:<key>, tag-key)",
    ),
    "pending-states": (
        True,
        "creates are not instant: RDS instances and clusters `creating`, ElastiCache "
        "replication groups `creating`, EFS file systems and mount targets `creating`, NAT "
        "gateways `pending`, for DELAY_MS",
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html; "
        "https://docs.aws.amazon.com/efs/latest/ug/API_FileSystemDescription.html (LifeCycleState); "
        "https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-basics.html",
    ),
    "rds-max-storage-rule": (
        True,
        "MaxAllocatedStorage must be at least 10 % more than the allocated storage (equal "
        "turns autoscaling off), else InvalidParameterCombination",
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html "
        "(\"set the maximum storage threshold to at least 10% more than the current allocated "
        "storage\")",
    ),
    "efs-mount-target-state": (
        True,
        "DescribeMountTargetSecurityGroups and ModifyMountTargetSecurityGroups answer "
        "IncorrectMountTargetState while the mount target is not `available`",
        "https://docs.aws.amazon.com/efs/latest/ug/API_DescribeMountTargetSecurityGroups.html "
        "(\"requires that ... the lifecycle state of the mount target is not deleted\"; error "
        "IncorrectMountTargetState)",
    ),
    "rds-minor-upgrades": (
        True,
        "a DB instance or cluster with AutoMinorVersionUpgrade (the default) reports a newer "
        "minor version than the one it was created with, DELAY_MS x 2 after its create or last "
        "version change",
        "botocore rds CreateDBInstanceMessage.AutoMinorVersionUpgrade (\"By default, minor "
        "engine upgrades are applied automatically\"); "
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Maintenance.html",
    ),
    "rds-secret-tags": (
        True,
        "the Secrets Manager secret RDS creates for ManageMasterUserPassword carries the DB "
        "instance's or cluster's tags (OwningService stays `rds`)",
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html "
        "(the caller needs secretsmanager:TagResource because RDS tags the secret it creates); "
        "terraform-provider-aws#41337",
    ),
    "rds-storage-autoscaling": (
        True,
        "a DB instance with MaxAllocatedStorage grows its AllocatedStorage on its own (once, by "
        "max(10 GiB, 10 %), DELAY_MS x 2 after its last storage change, then never within 6 h)",
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html",
    ),
    "elasticache-modifying": (
        True,
        "a replication group is `modifying` for DELAY_MS after each ModifyReplicationGroup, "
        "replica-count change or tag change; while it is not `available`, those calls and "
        "ListTagsForResource answer InvalidReplicationGroupState",
        "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Clusters.Modify.html; "
        "terraform-provider-aws#30444 and #33859 (\"Cluster not in available state to perform "
        "tagging operations\")",
    ),
    "elb-duplicates": (
        True,
        "ELBv2 refuses a second load balancer with a name in use (DuplicateLoadBalancerName) and a "
        "second listener on a port of the same load balancer (DuplicateListener); moto makes both",
        "CreateLoadBalancer and CreateListener API references (Errors: DuplicateLoadBalancerName, "
        "DuplicateListener)",
    ),
    "elb-deletion-protection": (
        True,
        "DeleteLoadBalancer answers OperationNotPermitted while the load balancer's "
        "deletion_protection.enabled attribute is true; moto deletes it",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
        "application-load-balancers.html#deletion-protection (\"you can't delete the load "
        "balancer while deletion protection is enabled\"); DeleteLoadBalancer API reference "
        "(Errors: OperationNotPermitted)",
    ),
    "rds-parameter-group-in-use": (
        True,
        "DeleteDBParameterGroup answers InvalidDBParameterGroupState while a DB instance uses the "
        "group; moto deletes it",
        "DeleteDBParameterGroup API reference (\"The specified DB parameter group can't be "
        "associated with any DB instances\"; Errors: InvalidDBParameterGroupState, \"you can't "
        "delete it when the parameter group is in this state\")",
    ),
    "s3-create-bucket-tags": (
        True,
        "CreateBucket applies the tags of its CreateBucketConfiguration (a bucket is tagged from "
        "its first moment); moto drops them",
        "CreateBucket API reference, CreateBucketConfiguration.Tags (\"An array of tags that you "
        "can apply to the bucket that you're creating\"; needs s3:TagResource)",
    ),
    "asg-lifecycle-hook-fields": (
        True,
        "a lifecycle hook reports the notification target and role it was given (none when "
        "none was given; moto reports a made-up SQS queue and role) and GlobalTimeout = "
        "min(100 x HeartbeatTimeout, 172800) (moto: always 172800)",
        "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LifecycleHook.html "
        "(GlobalTimeout: \"The maximum is 172800 seconds (48 hours) or 100 times "
        "HeartbeatTimeout, whichever is smaller\"); "
        "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html "
        "(NotificationTargetARN and RoleARN are optional)",
    ),
    "logs-metric-filters": (
        True,
        "CloudWatch Logs PutMetricFilter replaces the filter of that name in the group (moto adds "
        "a second one) and answers ResourceNotFoundException for a group that does not exist; "
        "DeleteLogGroup deletes the group's metric filters with it (moto keeps them)",
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html "
        "(\"Creates or updates a metric filter\"; Errors: ResourceNotFoundException); "
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DeleteLogGroup.html "
        "(\"Deletes the specified log group and permanently deletes all the archived log events "
        "associated with the log group\"; its metric filters go with it)",
    ),
    "eventual-consistency": (
        True,
        "a just-created EC2 VPC, subnet, security group, internet gateway, route table, NAT "
        "gateway or launch template is left out of EC2 describes (by id: its NotFound error) for "
        "CONSISTENCY_MS; other services see it at once",
        "https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html",
    ),
    "ec2-deletes-linger": (
        True,
        "a VPC, subnet, security group, internet gateway, route table or launch template deleted "
        "through EC2 is still listed by EC2's Describe calls (by id, by name and by filter, tags "
        "and all) for CONSISTENCY_MS; the delete itself is done (a second delete answers "
        "NotFound, other calls do not see it)",
        "https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html (\"the result "
        "of an API command you run that affects your Amazon EC2 resources might not be "
        "immediately visible to all subsequent commands you run\"); terraform-provider-aws "
        "internal/service/ec2/vpc_security_group.go, resourceSecurityGroupDelete, polls "
        "DescribeSecurityGroups after DeleteSecurityGroup until the group is not found "
        "(RetryUntilNotFound, ec2PropagationTimeout)",
    ),
    "cloudwatch-alarm-filters": (
        True,
        "DescribeAlarms applies every filter it is given together (AlarmNamePrefix or AlarmNames "
        "and StateValue; moto uses only the first of them)",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html "
        "(StateValue: \"Specify this parameter to receive information only about alarms that are "
        "currently in the state that you specify\")",
    ),
    "logs-interleaved": (
        True,
        "FilterLogEvents returns the events of all the group's streams interleaved, in time "
        "order, whether or not `interleaved` is set (moto: stream by stream unless it is)",
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html "
        "(interleaved: \"this parameter is ignored and the value is assumed to be true. The "
        "response from this operation always interleaves events from multiple log streams within "
        "a log group\")",
    ),
}


def _parse_selection(spec):
    on = {n for n, (d, _, _) in BEHAVIOURS.items() if d}
    for token in [t.strip() for t in (spec or "default").split(",") if t.strip()]:
        if token == "all":
            on = set(BEHAVIOURS)
        elif token == "none":
            on = set()
        elif token == "default":
            on = {n for n, (d, _, _) in BEHAVIOURS.items() if d}
        elif token.startswith("-"):
            _check(token[1:])
            on.discard(token[1:])
        else:
            _check(token.lstrip("+"))
            on.add(token.lstrip("+"))
    return on


def _check(name):
    if name not in BEHAVIOURS:
        sys.exit(f"moto_server: unknown behaviour {name!r} in MOODLESTACK_EMULATOR_BEHAVIOURS; "
                 f"known: {', '.join(BEHAVIOURS)}")


ENABLED = _parse_selection(os.environ.get("MOODLESTACK_EMULATOR_BEHAVIOURS"))
DELAY = float(os.environ.get("MOODLESTACK_EMULATOR_DELAY_MS", "1000")) / 1000.0
CONSISTENCY = float(os.environ.get("MOODLESTACK_EMULATOR_CONSISTENCY_MS", "500")) / 1000.0
_LOCK = threading.RLock()
DEBUG = bool(os.environ.get("MOODLESTACK_EMULATOR_DEBUG"))  # log what validation checked


def on(name):
    return name in ENABLED


def listing():
    lines = [f"{'behaviour':<24} {'default':<8} {'now':<4} what"]
    for name, (default, what, _src) in BEHAVIOURS.items():
        lines.append(f"{name:<24} {'on' if default else 'off':<8} {'on' if on(name) else 'off':<4} {what}")
    lines.append(f"DELAY_MS={DELAY * 1000:.0f} CONSISTENCY_MS={CONSISTENCY * 1000:.0f}")
    return "\n".join(lines)


class AwsError(ServiceException):
    """An AWS error answered in the protocol's own format (moto's serializer takes the HTTP
    status from the service model when the code is one of its error shapes)."""

    def __init__(self, code, message, status=400):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.http_status = status


# --- the hook into moto's request handling ----------------------------------------------------

PRE = {}   # (service, action) -> [fn(response, action)]
POST = {}  # (service, action) -> [fn(response, action, result)]


def pre(service, *actions):
    def register(fn):
        for a in actions:
            PRE.setdefault((service, a), []).append(fn)
        return fn
    return register


def post(service, *actions):
    def register(fn):
        for a in actions:
            POST.setdefault((service, a), []).append(fn)
        return fn
    return register


def _error_response(resp, err):
    status, headers, body = resp.serialized(ActionResult(err))
    if getattr(err, "http_status", None) and status == 400 and err.http_status != 400:
        status = err.http_status
    headers["status"] = str(status)
    return status, headers, body


_orig_call_action = BaseResponse.call_action
_CURRENT = threading.local()  # the service of the request being handled on this thread


def _call_action(self):
    service = self.boto3_service_name
    _CURRENT.service = service
    try:
        action = self._get_action()
    except Exception:  # noqa: BLE001 - moto answers unknown actions itself
        action = None
    _CURRENT.action = action
    hooks = PRE.get((service, action), []) + PRE.get((service, "*"), []) + PRE.get(("*", "*"), [])
    try:
        with _LOCK:
            for hook in hooks:
                hook(self, action)
    except AwsError as err:
        return _error_response(self, err)
    result = _orig_call_action(self)
    for hook in POST.get((service, action), []):
        with _LOCK:
            try:
                hook(self, action, result)
            except Exception as exc:  # noqa: BLE001 - a bookkeeping hook never breaks a call
                print(f"behaviours: post hook {hook.__name__}: {exc!r}", file=sys.stderr)
    return result


def install():
    if getattr(BaseResponse, "_moodlestack_behaviours", False):
        return
    BaseResponse.call_action = _call_action
    BaseResponse._moodlestack_behaviours = True
    _install_models()


# --- request validation from the botocore models ----------------------------------------------

def _parsed(resp, action):
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import determine_request_protocol
    from moto.core.responses import get_service_model

    sm = get_service_model(resp.boto3_service_name)
    om = sm.operation_model(action)
    req = resp.normalized_request
    protocol = determine_request_protocol(sm, req.content_type)
    parser = PROTOCOL_PARSERS[protocol](om, map_type=dict)
    params = parser.parse({
        "method": req.method,
        "values": req.values,
        "headers": req.headers,
        "body": req.data,
        "url_path": req.path,
        "url_params": getattr(resp, "uri_match", None) or {},
    })
    return om, params


_PATTERNS = {}


def _pattern(p):
    if p not in _PATTERNS:
        try:
            _PATTERNS[p] = re.compile(p)
        except re.error:
            _PATTERNS[p] = None  # Java-only syntax (\p{...}): not checked
    return _PATTERNS[p]


def _problems(shape, value, path, out):
    if value is None:
        return
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            return
        for req in shape.required_members:
            if value.get(req) is None:
                out.append(("missing", f"{path}{req}" if path else req))
        for name, member in shape.members.items():
            if name in value:
                _problems(member, value[name], f"{path}{name}.", out)
    elif t == "list":
        if not isinstance(value, list):
            return
        p = path.rstrip(".")
        if "min" in meta and len(value) < meta["min"]:
            out.append(("invalid", f"{p} has {len(value)} members, at least {meta['min']} needed"))
        if "max" in meta and len(value) > meta["max"]:
            out.append(("invalid", f"{p} has {len(value)} members, at most {meta['max']} allowed"))
        for i, v in enumerate(value):
            _problems(shape.member, v, f"{p}.{i + 1}.", out)
    elif t == "map":
        if isinstance(value, dict):
            for k, v in value.items():
                _problems(shape.value, v, f"{path}{k}.", out)
    elif t == "string":
        p = path.rstrip(".")
        if not isinstance(value, str):
            return
        if "min" in meta and len(value) < meta["min"]:
            out.append(("invalid", f"Value at '{p}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}"))
        if "max" in meta and len(value) > meta["max"]:
            out.append(("invalid", f"Value at '{p}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}"))
        if shape.enum and value not in shape.enum:
            out.append(("invalid", f"Value '{value}' at '{p}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]"))
        pat = meta.get("pattern")
        if pat and _pattern(pat) is not None and not _pattern(pat).fullmatch(value):
            out.append(("invalid", f"Value at '{p}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pat}"))
    elif t in ("integer", "long", "float", "double"):
        p = path.rstrip(".")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "min" in meta and value < meta["min"]:
                out.append(("invalid", f"Value '{value}' at '{p}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}"))
            if "max" in meta and value > meta["max"]:
                out.append(("invalid", f"Value '{value}' at '{p}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}"))


# the error each protocol's services answer for a missing member and for a bad value
_ERRORS = {
    "ec2": ("MissingParameter", "InvalidParameterValue"),
    "efs": ("BadRequest", "BadRequest"),
    "secretsmanager": ("InvalidParameterException", "InvalidParameterException"),
    "ssm": ("ValidationException", "ValidationException"),
    "rds": ("MissingParameter", "InvalidParameterValue"),
    "elasticache": ("MissingParameter", "InvalidParameterValue"),
}
_VALIDATED = {"ec2", "rds", "elasticache", "elbv2", "autoscaling", "iam", "sts", "efs",
              "secretsmanager", "ssm"}

USER_DATA_LIMIT = 16 * 1024


def _raw_user_data(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return value.encode()


def _extra_limits(service, action, params, out):
    """Documented limits the botocore model does not carry."""
    if service == "ec2":
        user_data = None
        if action == "RunInstances":
            user_data = params.get("UserData")
        elif action in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion"):
            user_data = (params.get("LaunchTemplateData") or {}).get("UserData")
        raw = _raw_user_data(user_data)
        if raw is not None and len(raw) > USER_DATA_LIMIT:
            out.append(("invalid", f"User data is limited to {USER_DATA_LIMIT} bytes (got {len(raw)} bytes raw)"))
        if action in ("CreateLaunchTemplate",) and params.get("LaunchTemplateName") is not None:
            name = params["LaunchTemplateName"]
            if not re.fullmatch(r"[a-zA-Z0-9().\-/_]{3,128}", name):
                out.append(("invalid", f"Launch template name '{name}' must be 3-128 letters, digits, "
                                       "parentheses, periods, hyphens, slashes or underscores"))
        if action == "CreateSecurityGroup":
            name = params.get("GroupName") or ""
            if name.lower().startswith("sg-"):
                out.append(("invalid", "Group names may not be in the format sg-*"))
            if len(name) > 255:
                out.append(("invalid", "Group name must be at most 255 characters"))
    if service == "elbv2":
        if action in ("CreateLoadBalancer", "CreateTargetGroup"):
            name = params.get("Name") or ""
            if len(name) > 32 or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", name) \
                    or name.lower().startswith("internal-"):
                out.append(("invalid", f"'{name}' must be at most 32 alphanumeric characters or hyphens, not begin or end with a hyphen, and not begin with 'internal-'"))
        if action in ("CreateTargetGroup", "ModifyTargetGroup"):
            interval = params.get("HealthCheckIntervalSeconds")
            timeout = params.get("HealthCheckTimeoutSeconds")
            if interval is not None and timeout is not None and timeout >= interval:
                out.append(("invalid", "Health check timeout must be smaller than the interval"))
        if action in ("CreateListener", "ModifyListener"):
            if params.get("Protocol") == "HTTPS" and not params.get("Certificates") and action == "CreateListener":
                out.append(("missing", "Certificates"))
    if service == "elasticache" and action == "CreateReplicationGroup":
        rg = params.get("ReplicationGroupId") or ""
        if len(rg) > 40 or not re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|-(?!-))*", rg) or rg.endswith("-"):
            out.append(("invalid", "Replication group id must be 1-40 letters, digits or hyphens, begin with a letter, not end with a hyphen nor contain two consecutive hyphens"))
    if service == "rds" and action in ("CreateDBInstance", "CreateDBCluster"):
        ident = params.get("DBInstanceIdentifier") or params.get("DBClusterIdentifier") or ""
        if len(ident) > 63 or not re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|-(?!-))*", ident) or ident.endswith("-"):
            out.append(("invalid", "The parameter DBInstanceIdentifier is not a valid identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens."))


@pre("*", "*")
def _validate(resp, action):
    if not on("validation") or not action:
        return
    service = resp.boto3_service_name
    if service not in _VALIDATED:
        return
    try:
        om, params = _parsed(resp, action)
    except Exception as exc:  # noqa: BLE001 - moto answers what it cannot parse itself
        if DEBUG:
            print(f"behaviours: validation skipped {service}:{action}: {exc!r}", file=sys.stderr)
        return
    if DEBUG:
        print(f"behaviours: validated {service}:{action}", file=sys.stderr)
    out = []
    if om.input_shape is not None:
        _problems(om.input_shape, params, "", out)
    _extra_limits(service, action, params, out)
    if not out:
        return
    missing_code, invalid_code = _ERRORS.get(service, ("ValidationError", "ValidationError"))
    kind, text = out[0]
    if kind == "missing":
        code = missing_code
        if service == "ec2":
            msg = f"The request must contain the parameter {text}"
        else:
            msg = f"1 validation error detected: Value null at '{text}' failed to satisfy constraint: Member must not be null"
    else:
        code = invalid_code
        msg = text if len(out) == 1 else f"{len(out)} validation errors detected: " + "; ".join(t for _, t in out)
    raise AwsError(code, msg, 400)


# --- small helpers -------------------------------------------------------------------------

def _now():
    return time.time()


def _born(obj):
    b = getattr(obj, "_ms_born", None)
    if b is None:
        b = _now()
        obj.__dict__["_ms_born"] = b
    return b


def _transient_property(cls, attr, transient, ready_values=None, modifying=None):
    """Makes `cls.attr` read `transient` for DELAY after the object was created (and
    `modifying` for DELAY after `_ms_modified`), when pending-states (resp. the modifying
    behaviour) is on. The stored value is kept in `_ms_<attr>`."""
    store = f"_ms_{attr}"
    original = None
    for klass in cls.__mro__:
        if isinstance(klass.__dict__.get(attr), property):
            original = klass.__dict__[attr]  # moto's own (e.g. DBCluster: creating -> available)
            break

    def getter(self):
        value = original.fget(self) if original is not None else self.__dict__.get(store)
        now = _now()
        if ready_values is None or value in ready_values:
            if on("pending-states") and now - _born(self) < DELAY:
                return transient
            mod = self.__dict__.get("_ms_modified")
            if modifying and mod is not None and now - mod < DELAY:
                return modifying
        return value

    def setter(self, value):
        _born(self)
        if original is not None:
            original.fset(self, value)
        else:
            self.__dict__[store] = value

    if not getattr(cls.__init__, "_ms_wrapped", False):
        orig_init = cls.__init__

        def init(self, *args, **kwargs):
            orig_init(self, *args, **kwargs)
            self.__dict__["_ms_born"] = _now()

        init._ms_wrapped = True
        cls.__init__ = init

    setattr(cls, attr, property(getter, setter))


# --- models --------------------------------------------------------------------------------

def _install_models():
    from moto.ec2.models.nat_gateways import NatGateway
    from moto.efs.models import FileSystem, MountTarget
    from moto.elasticache.models import ReplicationGroup
    from moto.rds.models import DBCluster, DBInstance, MasterUserSecret

    _transient_property(DBInstance, "status", "creating", ready_values=("available",))
    _transient_property(DBCluster, "status", "creating", ready_values=("available",))
    _transient_property(ReplicationGroup, "status", "creating", ready_values=("available",),
                        modifying="modifying")
    _transient_property(FileSystem, "life_cycle_state", "creating", ready_values=("available",))
    _transient_property(MountTarget, "life_cycle_state", "creating", ready_values=("available",))
    _transient_property(NatGateway, "state", "pending", ready_values=("available",))
    for cls in (FileSystem, MountTarget):  # their info_json reads __dict__, not properties
        def info_json(self, _orig=cls.info_json):
            ret = _orig(self)
            ret["LifeCycleState"] = self.life_cycle_state
            return ret
        cls.info_json = info_json

    # RDS: the managed secret carries the DB's tags
    orig_tags = MasterUserSecret._generate_secret_tags

    def secret_tags(self):
        tags = orig_tags(self)
        if on("rds-secret-tags"):
            own = getattr(self.resource, "tags", None) or []
            have = {t["Key"] for t in tags}
            tags = tags + [{"Key": t["Key"], "Value": t["Value"]} for t in own if t["Key"] not in have]
        return tags

    MasterUserSecret._generate_secret_tags = secret_tags

    _install_ec2_consistency()
    _install_ec2_deletes_linger()
    _install_nat_tag_filters()
    _install_s3_create_bucket_tags()
    _install_cloudwatch_alarm_filters()
    _install_logs_interleaved()


# --- RDS: storage autoscaling, the 10 % rule, minor upgrades -----------------------------------

SIX_HOURS = 6 * 3600


# What AWS reports for an Aurora MySQL cluster created with a major-only version ("You can supply
# either 5.7 or 8.0 to use the default engine version for Aurora MySQL version 2 or version 3",
# CreateDBCluster API reference): a full version of that major.
AURORA_DEFAULT_MINOR = {"8.0": "8.0.mysql_aurora.3.08.2", "5.7": "5.7.mysql_aurora.2.12.5"}


def _bump_minor(engine, version):
    """The next minor version AWS would upgrade to (a plausible one: the last number + 1; a
    major-only version gets the minor AWS would have picked)."""
    if not version:
        return version
    if engine == "aurora-mysql" and version in AURORA_DEFAULT_MINOR:
        return AURORA_DEFAULT_MINOR[version]
    if re.fullmatch(r"\d+(\.\d+)?", version) and engine.startswith(("mysql", "mariadb")):
        return version + ".99" if "." in version else version + ".0.99"
    if re.fullmatch(r"\d+", version):  # postgres "16"
        return version + ".99"
    m = re.search(r"(\d+)(\D*)$", version)
    if not m:
        return version
    n = m.group(1)
    bumped = str(int(n) + 1).zfill(len(n))
    return version[: m.start(1)] + bumped + m.group(2)


def _rds_drift(backend):
    now = _now()
    for db in list(backend.databases.values()):
        if on("rds-storage-autoscaling"):
            changed = db.__dict__.setdefault("_ms_storage_changed", _born(db))
            maximum = getattr(db, "_max_allocated_storage", None)
            current = int(db.allocated_storage or 0)
            if maximum and maximum > current and now - changed >= 2 * DELAY:
                grown = min(int(maximum), current + max(10, int(math.ceil(current * 0.1))))
                db.allocated_storage = grown
                db.__dict__["_ms_storage_changed"] = now + SIX_HOURS
        if on("rds-minor-upgrades") and getattr(db, "auto_minor_version_upgrade", True) \
                and getattr(db, "db_cluster_identifier", None) is None:
            _upgrade(db, now)
    for cluster in list(backend.clusters.values()):
        if on("rds-minor-upgrades"):
            if _upgrade(cluster, now):
                for member in backend.databases.values():
                    if getattr(member, "db_cluster_identifier", None) == cluster.db_cluster_identifier:
                        member.engine_version = cluster.engine_version


def _upgrade(db, now):
    since = db.__dict__.setdefault("_ms_version_changed", _born(db))
    if db.__dict__.get("_ms_upgraded_from") == db.engine_version or now - since < 2 * DELAY:
        return False
    new = _bump_minor(db.engine or "", db.engine_version)
    if new == db.engine_version:
        return False
    db.engine_version = new
    db.__dict__["_ms_upgraded_from"] = new
    db.__dict__["_ms_version_changed"] = now
    return True


@pre("rds", "DescribeDBInstances", "DescribeDBClusters", "ModifyDBInstance", "ModifyDBCluster")
def _rds_time_passes(resp, action):
    try:
        backend = resp.backend
    except Exception:  # noqa: BLE001
        return
    _rds_drift(backend)


@pre("rds", "CreateDBInstance", "ModifyDBInstance")
def _rds_max_storage_rule(resp, action):
    if not on("rds-max-storage-rule"):
        return
    maximum = resp._get_param("MaxAllocatedStorage")
    if maximum is None:
        return
    maximum = int(maximum)
    allocated = resp._get_param("AllocatedStorage")
    if allocated is None and action == "ModifyDBInstance":
        db = resp.backend.databases.get(resp._get_param("DBInstanceIdentifier"))
        allocated = db.allocated_storage if db else None
    if allocated is None:
        return
    allocated = int(allocated)
    if action == "ModifyDBInstance":
        db = resp.backend.databases.get(resp._get_param("DBInstanceIdentifier"))
        if db is not None:
            allocated = max(allocated, int(db.allocated_storage))
    if maximum == allocated and action == "ModifyDBInstance":
        return  # turns autoscaling off
    if maximum * 10 < allocated * 11:
        raise AwsError(
            "InvalidParameterCombination",
            f"Max storage size must be at least 10% greater than the allocated storage "
            f"({allocated} GiB): {maximum} GiB given",
        )


@post("rds", "ModifyDBInstance")
def _rds_storage_modified(resp, action, result):
    if result[0] != 200:
        return
    db = resp.backend.databases.get(resp._get_param("DBInstanceIdentifier"))
    if db is None:
        return
    if resp._get_param("AllocatedStorage") is not None:
        db.__dict__["_ms_storage_changed"] = _now() + SIX_HOURS
    if resp._get_param("EngineVersion"):
        db.__dict__["_ms_version_changed"] = _now()
        db.__dict__["_ms_upgraded_from"] = None


@post("rds", "ModifyDBCluster")
def _rds_cluster_modified(resp, action, result):
    if result[0] != 200 or not resp._get_param("EngineVersion"):
        return
    cluster = resp.backend.clusters.get(resp._get_param("DBClusterIdentifier"))
    if cluster is not None:
        cluster.__dict__["_ms_version_changed"] = _now()
        cluster.__dict__["_ms_upgraded_from"] = None


# --- ElastiCache: one operation at a time -------------------------------------------------------

_EC_BUSY = ("ModifyReplicationGroup", "IncreaseReplicaCount", "DecreaseReplicaCount",
            "AddTagsToResource", "RemoveTagsFromResource", "ListTagsForResource")


def _ec_group(resp, action):
    backend = resp.elasticache_backend
    if action in ("AddTagsToResource", "RemoveTagsFromResource", "ListTagsForResource"):
        arn = resp._get_param("ResourceName") or ""
        if ":replicationgroup:" not in arn:
            return None
        return backend.replication_groups.get(arn.rsplit(":", 1)[-1])
    return backend.replication_groups.get(resp._get_param("ReplicationGroupId"))


@pre("elasticache", *_EC_BUSY)
def _ec_refuse_while_busy(resp, action):
    if not on("elasticache-modifying"):
        return
    rg = _ec_group(resp, action)
    if rg is None:
        return
    if rg.status != "available":
        if action.endswith("TagsToResource") or action.endswith("TagsFromResource") or action == "ListTagsForResource":
            msg = "Cluster not in available state to perform tagging operations."
        else:
            msg = f"Replication group {rg.replication_group_id} is not in available state (it is {rg.status})."
        raise AwsError("InvalidReplicationGroupState", msg, 400)


@post("elasticache", "ModifyReplicationGroup", "IncreaseReplicaCount", "DecreaseReplicaCount",
      "AddTagsToResource", "RemoveTagsFromResource")
def _ec_now_modifying(resp, action, result):
    if not on("elasticache-modifying") or result[0] != 200:
        return
    rg = _ec_group(resp, action)
    if rg is not None:
        rg.__dict__["_ms_modified"] = _now()


# --- EFS: mount target security groups need an available mount target ---------------------------

@pre("efs", "DescribeMountTargetSecurityGroups", "ModifyMountTargetSecurityGroups")
def _efs_mount_target_state(resp, action):
    if not on("efs-mount-target-state"):
        return
    mt_id = (getattr(resp, "uri_match", None) or {}).get("MountTargetId")
    if not mt_id:
        m = re.search(r"/mount-targets/([^/]+)/security-groups", resp.path or "")
        mt_id = m.group(1) if m else None
    mt = resp.efs_backend.mount_targets_by_id.get(mt_id) if mt_id else None
    if mt is not None and mt.life_cycle_state != "available":
        raise AwsError("IncorrectMountTargetState",
                       f"Mount target {mt_id} is in state {mt.life_cycle_state}, not available.", 409)


# --- EC2: eventual consistency and tag filters ---------------------------------------------------

_EC2_RECENT = {}  # id -> creation time

_EC2_KINDS = {
    # backend method -> (NotFound code, id attribute)
    "describe_vpcs": ("InvalidVpcID.NotFound", "id"),
    "describe_subnets": ("InvalidSubnetID.NotFound", "id"),
    "describe_security_groups": ("InvalidGroup.NotFound", "id"),
    "describe_internet_gateways": ("InvalidInternetGatewayID.NotFound", "id"),
    "describe_route_tables": ("InvalidRouteTableID.NotFound", "id"),
    "describe_nat_gateways": ("NatGatewayNotFound", "id"),
    "describe_launch_templates": ("InvalidLaunchTemplateId.NotFound", "id"),
}
_EC2_CREATES = {
    "CreateVpc": r"<vpcId>([^<]+)</vpcId>",
    "CreateSubnet": r"<subnetId>([^<]+)</subnetId>",
    "CreateSecurityGroup": r"<groupId>([^<]+)</groupId>",
    "CreateInternetGateway": r"<internetGatewayId>([^<]+)</internetGatewayId>",
    "CreateRouteTable": r"<routeTableId>([^<]+)</routeTableId>",
    "CreateNatGateway": r"<natGatewayId>([^<]+)</natGatewayId>",
    "CreateLaunchTemplate": r"<launchTemplateId>([^<]+)</launchTemplateId>",
}


@post("ec2", *_EC2_CREATES)
def _ec2_created(resp, action, result):
    if not on("eventual-consistency") or result[0] != 200:
        return
    body = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
    m = re.search(_EC2_CREATES[action], body)
    if m:
        _EC2_RECENT[m.group(1)] = _now()


def _recent(obj_id):
    born = _EC2_RECENT.get(obj_id)
    if born is None:
        return False
    if _now() - born >= CONSISTENCY:
        _EC2_RECENT.pop(obj_id, None)
        return False
    return True


class _Ec2NotFound(AwsError):
    pass


def _install_ec2_consistency():
    from moto.ec2.models import EC2Backend

    for method, (code, attr) in _EC2_KINDS.items():
        orig = getattr(EC2Backend, method, None)
        if orig is None:
            continue

        @functools.wraps(orig)  # keeps moto's signature (`inspect.signature` follows it)
        def wrapper(self, *args, _orig=orig, _code=code, _attr=attr, **kwargs):
            result = _orig(self, *args, **kwargs)
            # only EC2's own API answers late; other services' lookups of a subnet or security
            # group (Auto Scaling, EFS, RDS, ...) see it at once
            if not on("eventual-consistency") or not _EC2_RECENT \
                    or getattr(_CURRENT, "service", None) != "ec2":
                return result
            explicit = any(isinstance(a, list) and a and isinstance(a[0], str) for a in args) or \
                any(isinstance(v, list) and v and isinstance(v[0], str)
                    for k, v in kwargs.items() if k != "filters")
            items = list(result)
            hidden = [o for o in items if _recent(getattr(o, _attr, None))]
            if not hidden:
                return result
            if explicit:
                ids = ", ".join(str(getattr(o, _attr)) for o in hidden)
                raise _Ec2NotFound(_code, f"The ID '{ids}' does not exist")
            return type(result)(o for o in items if o not in hidden) if isinstance(result, (list, tuple)) \
                else [o for o in items if o not in hidden]

        setattr(EC2Backend, method, wrapper)


# What a Describe call selects by (parameter -> attribute) and how it filters, per describe; and
# how each delete names what it deletes. A deleted resource is kept here for CONSISTENCY_MS and
# added to the EC2 API's Describe answers that select it (never to a backend lookup made inside
# another call: DeleteVpc's check for subnets sees the subnet gone).
_EC2_LINGER_DESCRIBES = {
    "describe_vpcs": (("vpc_ids", "id"),),
    "describe_subnets": (("subnet_ids", "id"),),
    "describe_security_groups": (("group_ids", "id"), ("groupnames", "name")),
    "describe_internet_gateways": (("internet_gateway_ids", "id"),),
    "describe_route_tables": (("route_table_ids", "id"),),
    "describe_launch_templates": (("template_ids", "id"), ("template_names", "name")),
}
_EC2_LINGER_DELETES = {
    # backend delete -> (its describe, the deleted object looked up from the bound arguments)
    "delete_vpc": ("describe_vpcs", lambda b, a: b.vpcs.get(a.get("vpc_id"))),
    "delete_subnet": ("describe_subnets", lambda b, a: next(
        (s[a.get("subnet_id")] for s in b.subnets.values() if a.get("subnet_id") in s), None)),
    "delete_security_group": ("describe_security_groups", lambda b, a: (
        b.get_security_group_from_id(a["group_id"]) if a.get("group_id")
        else b.get_security_group_by_name_or_id(a.get("name")) if a.get("name") else None)),
    "delete_internet_gateway": ("describe_internet_gateways",
                                lambda b, a: b.internet_gateways.get(a.get("internet_gateway_id"))),
    "delete_route_table": ("describe_route_tables",
                           lambda b, a: b.route_tables.get(a.get("route_table_id"))),
    "delete_launch_template": ("describe_launch_templates", lambda b, a: b.launch_templates.get(
        b.launch_template_name_to_ids.get(a.get("name")) if a.get("name") else a.get("tid"))),
}
_EC2_GHOSTS = {}  # describe method -> [(deleted at, object)]


def _ghosts(method):
    now = _now()
    live = [(t, o) for t, o in _EC2_GHOSTS.get(method, []) if now - t < CONSISTENCY]
    _EC2_GHOSTS[method] = live
    return [o for _, o in live]


def _ghost_filter(method, filters, objs):
    if not filters or not objs:
        return objs
    from moto.ec2.utils import filter_internet_gateways, generic_filter
    if method == "describe_internet_gateways":
        return filter_internet_gateways(objs, filters)
    if method == "describe_security_groups":
        return [g for g in objs if g.matches_filters(filters)]
    return generic_filter(filters, objs)


def _exists(describe, backend, param, value):
    """Whether `describe` (a backend describe) finds a live resource with `param` = [value]."""
    try:
        return bool(describe(backend, **{param: [value]}))
    except Exception:  # noqa: BLE001 - moto's NotFound errors
        return False


def _install_ec2_deletes_linger():
    import inspect

    from moto.ec2.models import EC2Backend

    for method, (describe, lookup) in _EC2_LINGER_DELETES.items():
        orig = getattr(EC2Backend, method)
        sig = inspect.signature(orig)

        def delete(self, *args, _orig=orig, _sig=sig, _describe=describe, _lookup=lookup,
                   **kwargs):
            if not on("ec2-deletes-linger") or getattr(_CURRENT, "service", None) != "ec2":
                return _orig(self, *args, **kwargs)
            bound = _sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            obj = _lookup(self, bound.arguments)
            result = _orig(self, *args, **kwargs)
            if obj is not None:
                with _LOCK:
                    _EC2_GHOSTS.setdefault(_describe, []).append((_now(), obj))
            return result

        setattr(EC2Backend, method, delete)

    for method, selectors in _EC2_LINGER_DESCRIBES.items():
        orig = getattr(EC2Backend, method)
        sig = inspect.signature(orig)

        def describe(self, *args, _orig=orig, _sig=sig, _method=method, _selectors=selectors,
                     **kwargs):
            action = getattr(_CURRENT, "action", None) or ""
            if not on("ec2-deletes-linger") or getattr(_CURRENT, "service", None) != "ec2" \
                    or not action.startswith("Describe") or not _EC2_GHOSTS.get(_method):
                return _orig(self, *args, **kwargs)
            with _LOCK:
                ghosts = _ghosts(_method)
            if not ghosts:
                return _orig(self, *args, **kwargs)
            bound = _sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            selected = [(p, attr) for p, attr in _selectors if a.get(p)]
            hits, rest_empty = ghosts, False
            for p, attr in selected:
                asked = list(a[p])
                gone = {getattr(g, attr, None) for g in ghosts} & set(asked)
                if attr == "name":
                    # A name made again since is the live resource's: asked for by name, only
                    # it answers.
                    gone = {v for v in gone if not _exists(_orig, self, p, v)}
                hits = [g for g in hits if getattr(g, attr, None) in gone]
                a[p] = [v for v in asked if v not in gone]
                rest_empty = rest_empty or not a[p]
            # What is asked for by id or name and is only a ghost: the live call would answer
            # NotFound for it (or list everything for an empty list), so only the ghosts answer.
            live = [] if rest_empty else _orig(*bound.args, **bound.kwargs)
            live_ids = {getattr(o, "id", None) for o in live}
            extra = [g for g in _ghost_filter(_method, a.get("filters"), hits)
                     if getattr(g, "id", None) not in live_ids]
            return list(live) + extra

        setattr(EC2Backend, method, describe)


def _install_nat_tag_filters():
    from moto.ec2.models import EC2Backend
    from moto.ec2.utils import tag_filter_matches

    orig = EC2Backend.describe_nat_gateways

    def describe_nat_gateways(self, filters, nat_gateway_ids):
        result = orig(self, filters, nat_gateway_ids)
        if not on("tag-filters") or not filters:
            return result
        for name, values in filters.items():
            if name.startswith("tag:") or name in ("tag-key", "tag-value"):
                result = [n for n in result if tag_filter_matches(n, name, values)]
        return result

    EC2Backend.describe_nat_gateways = describe_nat_gateways


def _install_s3_create_bucket_tags():
    import xmltodict
    from moto.s3.responses import S3Response

    orig = S3Response._bucket_response_put

    def _bucket_response_put(self, *args, **kwargs):
        result = orig(self, *args, **kwargs)
        if not on("s3-create-bucket-tags") or self.data.get("Action") != "CreateBucket" or not self.body:
            return result
        try:
            config = xmltodict.parse(self.body).get("CreateBucketConfiguration") or {}
        except Exception:  # noqa: BLE001 - not XML: moto answered it already
            return result
        tags = (config.get("Tags") or {}).get("Tag") or []
        if isinstance(tags, dict):
            tags = [tags]
        if tags:
            self.backend.put_bucket_tagging(
                self.bucket_name, {t["Key"]: t.get("Value") or "" for t in tags})
        return result

    S3Response._bucket_response_put = _bucket_response_put


# --- ELBv2 duplicates ---------------------------------------------------------------------------

@pre("elbv2", "CreateLoadBalancer", "CreateListener")
def _elb_duplicates(resp, action):
    if not on("elb-duplicates"):
        return
    backend = resp.elbv2_backend
    if action == "CreateLoadBalancer":
        name = resp._get_param("Name")
        if any(lb.name == name for lb in backend.load_balancers.values()):
            raise AwsError(
                "DuplicateLoadBalancerName",
                "A load balancer with the same name '%s' exists, but with different settings" % name,
            )
        return
    balancer = backend.load_balancers.get(resp._get_param("LoadBalancerArn"))
    port = resp._get_param("Port")
    if balancer is not None and port is not None:
        if any(str(getattr(l, "port", "")) == str(port) for l in balancer.listeners.values()):
            raise AwsError("DuplicateListener", "A listener with the specified port already exists.")


# --- ELBv2 deletion protection ------------------------------------------------------------------

@pre("elbv2", "DeleteLoadBalancer")
def _elb_deletion_protection(resp, action):
    if not on("elb-deletion-protection"):
        return
    arn = resp._get_param("LoadBalancerArn")
    balancer = resp.elbv2_backend.load_balancers.get(arn)
    if balancer is None:
        return
    if str(balancer.attrs.get("deletion_protection.enabled", "false")).lower() == "true":
        raise AwsError(
            "OperationNotPermitted",
            "Load balancer '%s' cannot be deleted because deletion protection is enabled" % arn,
        )


# --- RDS parameter groups in use ----------------------------------------------------------------

@pre("rds", "DeleteDBParameterGroup")
def _rds_parameter_group_in_use(resp, action):
    if not on("rds-parameter-group-in-use"):
        return
    name = resp._get_param("DBParameterGroupName")
    users = [db.db_instance_identifier for db in resp.backend.databases.values()
             if (db.db_parameter_group_name or "").lower() == (name or "").lower()]
    if users:
        raise AwsError(
            "InvalidDBParameterGroupState",
            "One or more database instances are still members of this parameter group %s, so the "
            "group cannot be deleted" % name,
        )


# --- Auto Scaling lifecycle hooks ---------------------------------------------------------------

@post("autoscaling", "PutLifecycleHook")
def _asg_lifecycle_hook_fields(resp, action, result):
    if not on("asg-lifecycle-hook-fields"):
        return
    group = resp._get_param("AutoScalingGroupName")
    name = resp._get_param("LifecycleHookName")
    hook = resp.autoscaling_backend.lifecycle_hooks.get(f"{group}_{name}")
    if hook is None:
        return
    hook.notification_target_arn = resp._get_param("NotificationTargetARN")
    hook.role_arn = resp._get_param("RoleARN")
    hook.global_timeout = min(100 * int(hook.heartbeat_timeout), 172800)


# --- CloudWatch: DescribeAlarms filters together -------------------------------------------------

def _install_cloudwatch_alarm_filters():
    from moto.cloudwatch.responses import CloudWatchResponse

    orig = CloudWatchResponse.describe_alarms

    def describe_alarms(self):
        if not on("cloudwatch-alarm-filters"):
            return orig(self)
        backend = self.cloudwatch_backend
        alarms = list(backend.describe_alarms())
        action_prefix = self._get_param("ActionPrefix")
        if action_prefix:
            chosen = {a.name for a in backend.get_alarms_by_action_prefix(action_prefix)}
            alarms = [a for a in alarms if a.name in chosen]
        prefix = self._get_param("AlarmNamePrefix")
        if prefix:
            alarms = [a for a in alarms if a.name.startswith(prefix)]
        names = self._get_param("AlarmNames", [])
        if names:
            alarms = [a for a in alarms if a.name in names]
        state = self._get_param("StateValue")
        if state:
            alarms = [a for a in alarms if a.state_value == state]
        return ActionResult({
            "MetricAlarms": [a for a in alarms if a.rule is None],
            "CompositeAlarms": [a for a in alarms if a.rule is not None],
        })

    CloudWatchResponse.describe_alarms = describe_alarms


# --- CloudWatch Logs: FilterLogEvents always interleaves -----------------------------------------

def _install_logs_interleaved():
    from moto.logs.models import LogGroup

    orig = LogGroup.filter_log_events

    def filter_log_events(self, log_group_name, log_stream_names, start_time, end_time, limit,
                          next_token, filter_pattern, interleaved):
        return orig(self, log_group_name, log_stream_names, start_time, end_time, limit,
                    next_token, filter_pattern, interleaved or on("logs-interleaved"))

    LogGroup.filter_log_events = filter_log_events

# --- CloudWatch Logs metric filters -------------------------------------------------------------

@pre("logs", "PutMetricFilter")
def _logs_put_metric_filter(resp, action):
    if not on("logs-metric-filters"):
        return
    from moto.logs.exceptions import ResourceNotFoundException
    backend = resp.logs_backend
    group, name = resp._get_param("logGroupName"), resp._get_param("filterName")
    if group not in backend.groups:
        raise ResourceNotFoundException()
    backend.filters.metric_filters = [
        f for f in backend.filters.metric_filters
        if not (f["logGroupName"] == group and f["filterName"] == name)]


@post("logs", "DeleteLogGroup")
def _logs_delete_group_filters(resp, action, result):
    if not on("logs-metric-filters"):
        return
    backend = resp.logs_backend
    group = resp._get_param("logGroupName")
    if group in backend.groups:
        return
    backend.filters.metric_filters = [
        f for f in backend.filters.metric_filters if f["logGroupName"] != group]
