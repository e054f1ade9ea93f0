"""Templates: environments built once in a builder sandbox, then reused read-only by every
sandbox and warm pool made from them."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from .base import Contract, Request
from .caller import Caller
from .errors import ErrorCode, ServiceError
from .files import PackageManager, valid_packages
from .ids import ExecutionId, SandboxId
from .sandbox import valid_env
from .warmpool import POOL_NAME_PATTERN, Script

TEMPLATE_NAME_PATTERN = POOL_NAME_PATTERN
TemplateName = Annotated[str, StringConstraints(pattern=TEMPLATE_NAME_PATTERN, max_length=63)]
PackageSpec = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MAX_TEMPLATE_PACKAGES = 64
LOG_TAIL_CHARS = 4000
# Where a template's layer is, read-only, in each of its sandboxes.
TEMPLATE_MOUNT = "/opt/template"


class TemplatePackages(Request):
    """What the build installs: pip into the layer's `.packages`, npm into its
    `node_modules`."""

    pip: list[PackageSpec] = Field(default_factory=list, max_length=MAX_TEMPLATE_PACKAGES)
    npm: list[PackageSpec] = Field(default_factory=list, max_length=MAX_TEMPLATE_PACKAGES)

    @field_validator("pip")
    @classmethod
    def _pip_names(cls, value: list[str]) -> list[str]:
        return valid_packages(PackageManager.PIP, value)

    @field_validator("npm")
    @classmethod
    def _npm_names(cls, value: list[str]) -> list[str]:
        return valid_packages(PackageManager.NPM, value)


class TemplateSpec(Request):
    """`POST /templates` body: what to build once."""

    name: TemplateName
    runtime: str = Field(default="python:3.11", min_length=1, max_length=64)
    packages: TemplatePackages = Field(default_factory=TemplatePackages)
    setup_commands: list[Script] = Field(
        default_factory=list,
        max_length=16,
        description="Shell commands run in order in the builder's /workspace after the "
        "installs; what they write there is in the layer",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Set in every sandbox of the template"
    )
    public: bool = Field(
        default=False, strict=True, description="Usable by every user (admins only); listed for all"
    )
    timeout: float = Field(
        default=900, gt=0, le=3600, strict=True, description="Seconds the build may take"
    )

    _env_names = field_validator("env")(valid_env)


class TemplateStatus(StrEnum):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class Template(Contract):
    """A template as its owner (or, when public, anyone) sees it."""

    name: TemplateName
    owner_id: str
    spec: TemplateSpec
    status: TemplateStatus
    reason: str | None = Field(default=None, description="Why the build failed")
    log_tail: str = Field(default="", description="The end of the build's output")
    build_sandbox_id: SandboxId | None = Field(
        default=None, description="The builder sandbox (its stream serves the build's output)"
    )
    build_execution_id: ExecutionId | None = Field(
        default=None,
        description="Follow the build: WebSocket /sandboxes/{buildSandboxId}/stream, "
        "`resume {executionId, lastSeq: 0}`",
    )
    layer: str | None = Field(
        default=None, description="The driver's layer id, once ready; never shown publicly"
    )
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, object]:
        body = self.wire()
        body.pop("layer", None)
        return body


class TemplateList(Contract):
    templates: list[Template]

    def names(self) -> list[str]:
        return sorted(template.name for template in self.templates)


def unknown_template(name: str, available: list[str]) -> ServiceError:
    """A 400 naming the templates the caller may use."""
    message = f"unknown template {name!r}; available: {', '.join(available) or 'none'}"
    return ServiceError(
        ErrorCode.INVALID_REQUEST,
        message,
        {"fields": {"template": message}, "available": available},
    )


class CreateTemplate(Contract):
    """`cmd.template.create`: start a build (replies at once, `building`)."""

    caller: Caller
    spec: TemplateSpec


class TemplateRef(Contract):
    """`cmd.template.get|delete|resolve`: one template, on behalf of a caller."""

    caller: Caller
    name: TemplateName


class ListTemplates(Contract):
    """`cmd.template.list`: the caller's templates and the public ones."""

    caller: Caller


class BuildTemplate(Contract):
    """`cmd.exec.template.build` (sandbox-svc to exec-svc): install and run the setup in
    the builder sandbox, all under one execution (streamed like one). Replies once the
    build has started; exec-svc reports the outcome with `cmd.template.built`."""

    caller: Caller
    name: TemplateName
    sandbox_id: SandboxId
    execution_id: ExecutionId
    packages: TemplatePackages
    setup_commands: list[Script]
    timeout: float = Field(gt=0, le=3600)


class TemplateBuilt(Contract):
    """`cmd.template.built` (exec-svc to sandbox-svc): a build's outcome, `reason` None
    when it succeeded. sandbox-svc then keeps the layer (or not) and ends the builder."""

    name: TemplateName
    sandbox_id: SandboxId
    reason: str | None = None
    log_tail: str = ""


class TemplatePoolsQuery(Contract):
    """`cmd.warmpool.template.pools` (sandbox-svc to warmpool-svc): the pools of a
    template, which must not be deleted while they exist."""

    name: TemplateName


class TemplatePools(Contract):
    pools: list[str]
