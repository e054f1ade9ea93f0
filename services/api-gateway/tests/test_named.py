"""A named resource's path: a name that cannot exist is as unknown as one that does not."""

import pytest
from starlette.requests import Request

from llmsafespace.contracts import Caller, ErrorCode, ServiceError, WarmPool, WarmPoolRef
from llmsafespace.contracts.warmpool import POOL_NAME_PATTERN
from llmsafespace.gateway.named import NamedResource

POOLS: NamedResource[WarmPoolRef, WarmPool] = NamedResource(
    "warm pool", POOL_NAME_PATTERN, WarmPoolRef, WarmPool.wire
)
CALLER = Caller(user_id="usr-abcdefabcdef")


def _request(name: str) -> Request:
    return Request({"type": "http", "path_params": {"name": name}})


def test_a_valid_name_is_the_callers_ref() -> None:
    assert POOLS.ref_of(_request("gpu-pool"), CALLER) == WarmPoolRef(caller=CALLER, name="gpu-pool")


@pytest.mark.parametrize("name", ["Upper", "-dash", "a" * 64, "pool\n", "a/b"])
def test_a_name_that_cannot_exist_is_not_found(name: str) -> None:
    with pytest.raises(ServiceError) as raised:
        POOLS.ref_of(_request(name), CALLER)
    assert raised.value.code is ErrorCode.NOT_FOUND
    assert "warm pool" in raised.value.message
