"""Template layers on Kubernetes: kept in the cluster by a Pod of their own, copied into
each sandbox of the template before it is handed out.

``keep_layer`` starts a holder Pod (component ``template-layer``, so never listed as a
sandbox) and streams the builder's ``/workspace`` into the holder's through the two agents
(the tar.gz archive the files API and snapshots use; nothing is buffered whole). A
sandbox created with ``template_layer`` gets an ``emptyDir`` at ``/opt/template``, and the
driver streams the holder's workspace into it before ``create`` returns: the same for a
cold create, a warm pool's sandbox (copied at warm time, by warmpool-svc's driver) and a
sandbox resumed from a snapshot. No storage class, registry or shared volume is needed.

Honest limits: each sandbox holds its own copy (not a shared read-only mount: a sandbox
may change its copy, and only its own), the copy costs time proportional to the layer,
and a layer lives as long as its holder Pod: a lost Pod (a drained node) makes creates of
the template fail, naming it, until the template is built again.
"""

from __future__ import annotations

import hashlib

from llmsafespace.contracts.ids import RuntimeId

from ..agent_client import AgentClient
from ..driver import Handle
from ..errors import DriverError

HOLDER_CPU = 0.1
HOLDER_MEMORY = 128 * 2**20  # an idle agent
WORKSPACE = "/workspace"


def holder_id(layer: str) -> RuntimeId:
    """The runtime id of the Pod keeping ``layer`` (a layer name may be longer than an id)."""
    return RuntimeId("layer-" + hashlib.sha256(layer.encode()).hexdigest()[:16])


async def copy_tree(source: Handle, source_dir: str, target: Handle, target_dir: str) -> None:
    """Stream ``source_dir`` of one sandbox into ``target_dir`` of another, as an archive."""
    reader = await AgentClient.connect(source.endpoint, source.token)
    try:
        writer = await AgentClient.connect(target.endpoint, target.token)
        try:
            download = await reader.open_read(source_dir, archive=True)
            upload = await writer.open_write(target_dir, archive=True)
            try:
                while (chunk := await download.read()) is not None:
                    await upload.send(chunk)
            except BaseException:
                await download.abort()
                await upload.abort()
                raise
            await upload.finish(None)
        finally:
            await writer.close()
    finally:
        await reader.close()


def lost(layer: str) -> DriverError:
    return DriverError(
        f"template layer {layer!r} is gone (its holder Pod {holder_id(layer)} no longer "
        "runs): build the template again"
    )
