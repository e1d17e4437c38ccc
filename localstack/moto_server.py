"""moto's server, plus the one AWS call moodlestack makes that moto 5.2.5 lacks.

ElastiCache `DeleteCacheSubnetGroup` answers "not implemented" (HTTP 500) in moto 5.2.5, so a
stack could never be destroyed on the emulator. This launcher adds it, with AWS's behaviour (the
group and its tags are removed; an unknown name is `CacheSubnetGroupNotFoundFault`), and then runs
moto's own server with the same arguments as `moto_server`. moodlestack's code is unchanged: it
sends the real AWS call either way. See localstack/README.md for every emulator gap.
"""

import sys

from moto.core.responses import EmptyResult
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

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
