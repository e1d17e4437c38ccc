"""moto's server, plus the AWS calls moodlestack makes that moto 5.2.5 lacks.

- ElastiCache `DeleteCacheSubnetGroup` answers "not implemented" (HTTP 500), so a stack could
  never be destroyed on the emulator. Added with AWS's behaviour: the group and its tags are
  removed; an unknown name is `CacheSubnetGroupNotFoundFault`.
- Auto Scaling `StartInstanceRefresh` and `DescribeInstanceRefreshes` answer HTTP 500, so no
  rollout could run. Added: a refresh is recorded with its preferences as `InProgress`; a second
  one while it runs is AWS's `InstanceRefreshInProgress`; like everything on the emulator it
  finishes quickly (`Successful` after REFRESH_SECONDS); they are listed newest first.

Then it runs moto's own server with the same arguments as `moto_server`. moodlestack's code is
unchanged: it sends the real AWS calls either way. See localstack/README.md for every gap.
"""

import os
import sys
import time
import uuid

from moto.autoscaling.responses import AutoScalingResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.elasticache.exceptions import CacheSubnetGroupNotFound
from moto.elasticache.models import ElastiCacheBackend
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


if not hasattr(AutoScalingResponse, "start_instance_refresh"):
    AutoScalingResponse.start_instance_refresh = _response_start_instance_refresh
if not hasattr(AutoScalingResponse, "describe_instance_refreshes"):
    AutoScalingResponse.describe_instance_refreshes = _response_describe_instance_refreshes

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
