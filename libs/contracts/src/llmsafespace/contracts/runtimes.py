"""The runtime catalog: runtime names clients ask for, and the named resource presets."""

from pydantic import Field

from .base import Contract
from .caller import Caller
from .errors import ErrorCode, ServiceError
from .sandbox import Resources, SecurityLevel

RUNTIME_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9._-]{1,31}$"
PROFILE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# Where scripts/setup.sh installs runtimes/python-data/requirements.txt (the local driver).
DATA_PACKAGES_DIR = "/var/lib/llmsafespace/runtimes/python-3.11-data"
DATA_PACKAGES = (
    "numpy==2.2.6",
    "pandas==2.2.3",
    "matplotlib==3.10.3",
    "scipy==1.15.3",
    "scikit-learn==1.6.1",
    "pillow==11.2.1",
    "requests==2.32.3",
)


class RuntimeInfo(Contract):
    """One runtime: what clients call it, and what each driver needs to start it."""

    id: str = Field(pattern=RUNTIME_NAME_PATTERN)
    language: str
    version: str
    description: str = ""
    image: str = Field(description="Container image (Kubernetes driver)")
    interpreter: str | None = Field(
        default=None, description="Host interpreter path (local driver); never shown publicly"
    )
    packages_dir: str | None = Field(
        default=None,
        description="Host dir of preinstalled Python packages, bound read-only into every "
        "sandbox of the runtime (local driver); never shown publicly",
    )
    packages: list[str] = Field(
        default_factory=list, description="What the runtime has preinstalled (name==version)"
    )

    def public(self) -> dict[str, object]:
        body = self.wire()
        body.pop("interpreter", None)
        body.pop("packagesDir", None)
        return body


class Profile(Contract):
    """A named preset of security level and resources."""

    id: str = Field(pattern=PROFILE_NAME_PATTERN)
    description: str = ""
    security_level: SecurityLevel = SecurityLevel.STANDARD
    resources: Resources = Field(default_factory=Resources)


def _default_runtimes() -> list[RuntimeInfo]:
    return [
        RuntimeInfo(
            id="python:3.11",
            language="python",
            version="3.11",
            description="CPython 3.11",
            image="ghcr.io/llmsafespace/runtime-python:3.11",
            interpreter="/usr/bin/python3.11",
        ),
        RuntimeInfo(
            id="python:3.11-data",
            language="python",
            version="3.11",
            description="CPython 3.11 with numpy, pandas, matplotlib, scipy, scikit-learn, "
            "pillow and requests (read-only, shared by every such sandbox)",
            image="ghcr.io/llmsafespace/runtime-python-data:3.11",
            interpreter="/usr/bin/python3.11",
            packages_dir=DATA_PACKAGES_DIR,
            packages=list(DATA_PACKAGES),
        ),
        RuntimeInfo(
            id="node:20",
            language="javascript",
            version="20",
            description="Node.js 20: run_code runs JavaScript in a persistent context; the "
            "shell has node and npm",
            image="ghcr.io/llmsafespace/runtime-node:20",
            interpreter="/usr/bin/python3.11",  # the agent's; it runs node for the code
        ),
    ]


def _default_profiles() -> list[Profile]:
    return [
        Profile(id="default", description="1 CPU, 512Mi memory"),
        Profile(
            id="small",
            description="half a CPU, 256Mi memory",
            resources=Resources(cpu=0.5, memory="256Mi", ephemeral_storage="512Mi"),
        ),
        Profile(
            id="large",
            description="2 CPUs, 2Gi memory",
            resources=Resources(cpu=2, memory="2Gi", ephemeral_storage="4Gi"),
        ),
    ]


class Catalog(Contract):
    """Every runtime and profile a deployment offers (from a JSON file, or the defaults)."""

    runtimes: list[RuntimeInfo] = Field(default_factory=_default_runtimes, min_length=1)
    profiles: list[Profile] = Field(default_factory=_default_profiles)

    def runtime(self, name: str) -> RuntimeInfo:
        """The runtime called `name`; an unknown name is a 400 naming the available ones."""
        for runtime in self.runtimes:
            if runtime.id == name:
                return runtime
        available = sorted(runtime.id for runtime in self.runtimes)
        message = f"unknown runtime {name!r}; available: {', '.join(available)}"
        raise ServiceError(
            ErrorCode.INVALID_REQUEST,
            message,
            {"fields": {"runtime": message}, "available": available},
        )

    def interpreters(self) -> dict[str, str]:
        """Runtime name → host interpreter, for the local driver."""
        return {r.id: r.interpreter for r in self.runtimes if r.interpreter is not None}

    def languages(self) -> dict[str, str]:
        """Runtime name → language of its run_code, for the local driver."""
        return {r.id: r.language for r in self.runtimes}

    def packages_dirs(self) -> dict[str, str]:
        """Runtime name → host dir of its preinstalled packages, for the local driver."""
        return {r.id: r.packages_dir for r in self.runtimes if r.packages_dir is not None}


class CatalogQuery(Contract):
    """`cmd.sandbox.catalog`: the runtimes and profiles on offer."""

    caller: Caller
