"""Templates: environments built once (packages, setup commands, env) that sandboxes and
warm pools start from. `AsyncTemplate` is the implementation; `Template` runs it for
synchronous callers."""

import asyncio
from typing import Any, Self
from urllib.parse import quote

from llmsafespace.contracts import TemplateStatus

from .config import ClientConfig
from .models import TemplateInfo
from .portal import run_sync
from .transport import call

POLL_SECONDS = 0.5


class AsyncTemplate:
    """A template by name. `await AsyncTemplate.create(...)` starts its build; `wait()`
    returns once it is `ready` (or `failed`: see `info.reason` and `info.log_tail`)."""

    def __init__(self, config: ClientConfig, info: TemplateInfo) -> None:
        self._config = config
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def status(self) -> TemplateStatus:
        return self.info.status

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        runtime: str = "python:3.11",
        pip: list[str] | None = None,
        npm: list[str] | None = None,
        setup_commands: list[str] | None = None,
        env: dict[str, str] | None = None,
        public: bool = False,
        timeout: float = 900,
        api_url: str | None = None,
        api_key: str | None = None,
    ) -> Self:
        """Start building a template (it is `building` on return)."""
        config = ClientConfig.resolve(api_url, api_key)
        body: dict[str, Any] = {
            "name": name,
            "runtime": runtime,
            "packages": {"pip": pip or [], "npm": npm or []},
            "setupCommands": setup_commands or [],
            "env": env or {},
            "public": public,
            "timeout": timeout,
        }
        reply = await call(config, "POST", "templates", json=body)
        return cls(config, TemplateInfo.model_validate(reply))

    @classmethod
    async def get(
        cls, name: str, *, api_url: str | None = None, api_key: str | None = None
    ) -> Self:
        """The template called `name` (raises `NotFoundError` if there is none for you)."""
        config = ClientConfig.resolve(api_url, api_key)
        return cls(config, TemplateInfo.model_validate(await call(config, "GET", _path(name))))

    @staticmethod
    async def list(*, api_url: str | None = None, api_key: str | None = None) -> list[TemplateInfo]:
        """Your templates and the public ones."""
        reply = await call(ClientConfig.resolve(api_url, api_key), "GET", "templates")
        return [TemplateInfo.model_validate(item) for item in reply["templates"]]

    async def refresh(self) -> Self:
        """Fetch the template afresh."""
        reply = await call(self._config, "GET", _path(self.name))
        self.info = TemplateInfo.model_validate(reply)
        return self

    async def wait(self, timeout: float | None = None) -> Self:
        """Poll until the build has ended: `status` is then `ready` or `failed`."""
        async with asyncio.timeout(timeout):
            while True:
                if (await self.refresh()).status is not TemplateStatus.BUILDING:
                    return self
                await asyncio.sleep(POLL_SECONDS)

    async def delete(self) -> None:
        """Delete the template (refused with `ConflictError` while something uses it)."""
        await call(self._config, "DELETE", _path(self.name))


class Template:
    """A template for synchronous code (see `AsyncTemplate`)."""

    def __init__(self, template: AsyncTemplate) -> None:
        self._template = template

    @property
    def name(self) -> str:
        return self._template.name

    @property
    def info(self) -> TemplateInfo:
        return self._template.info

    @property
    def status(self) -> TemplateStatus:
        return self._template.status

    @classmethod
    def create(cls, name: str, **options: Any) -> Self:
        """Start building a template (see `AsyncTemplate.create`)."""
        return cls(run_sync(AsyncTemplate.create(name, **options)))

    @classmethod
    def get(cls, name: str, *, api_url: str | None = None, api_key: str | None = None) -> Self:
        """The template called `name`."""
        return cls(run_sync(AsyncTemplate.get(name, api_url=api_url, api_key=api_key)))

    @staticmethod
    def list(*, api_url: str | None = None, api_key: str | None = None) -> list[TemplateInfo]:
        """Your templates and the public ones."""
        return run_sync(AsyncTemplate.list(api_url=api_url, api_key=api_key))

    def refresh(self) -> Self:
        run_sync(self._template.refresh())
        return self

    def wait(self, timeout: float | None = None) -> Self:
        """Block until the build has ended (`ready` or `failed`)."""
        run_sync(self._template.wait(timeout))
        return self

    def delete(self) -> None:
        """Delete the template."""
        run_sync(self._template.delete())


def _path(name: str) -> str:
    return "templates/" + quote(name, safe="")
