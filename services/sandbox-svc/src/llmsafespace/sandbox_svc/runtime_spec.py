"""The runtime a sandbox asks its driver for, from the sandbox's own fields (at create,
and again when a sandbox paused by snapshot resumes)."""

from llmsafespace.contracts import NetworkAccess, Resources, SecurityLevel, quantity_bytes
from llmsafespace.runtime import NetworkRule, RuntimeId, RuntimeOwner, RuntimeSpec


def runtime_spec(
    sandbox_id: str,
    runtime: str,
    resources: Resources,
    security_level: SecurityLevel,
    env: dict[str, str],
    network: NetworkAccess | None,
    layer: str | None,
) -> RuntimeSpec:
    """The runtime of the sandbox's own id, owned by sandbox-svc."""
    return RuntimeSpec(
        runtime_id=RuntimeId(sandbox_id),
        owner=RuntimeOwner.SANDBOX_SVC,
        runtime=runtime,
        cpu=resources.cpu,
        memory_bytes=quantity_bytes(resources.memory),
        storage_bytes=quantity_bytes(resources.ephemeral_storage),
        env=env,
        network_ports=None if network is None else network.ports(),
        network_rules=_network_rules(network),
        security_level=security_level.value,
        template_layer=layer,
    )


def _network_rules(access: NetworkAccess | None) -> tuple[NetworkRule, ...]:
    if access is None or not access.enabled:
        return ()
    return tuple(
        NetworkRule(ports=tuple(rule.ports), hosts=tuple(rule.hosts), cidrs=tuple(rule.cidrs))
        for rule in access.egress
    )
