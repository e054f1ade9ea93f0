"""Names checked in Python (env names, package specs) are checked whole: `re.match` with a
pattern ending in `$` also took a trailing newline (`"A\\n"`), which then reached a
process's environment or pip's command line."""

import pytest
from pydantic import ValidationError

from llmsafespace.contracts import (
    CreateSandboxRequest,
    InstallPackagesRequest,
    PackageManager,
    TemplateSpec,
)


@pytest.mark.parametrize("name", ["A\n", "A\r\n", "PATH\nX", "1A", "A-B"])
def test_an_env_name_that_is_not_a_whole_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="invalid environment variable name"):
        CreateSandboxRequest(env={name: "1"})
    with pytest.raises(ValidationError, match="invalid environment variable name"):
        TemplateSpec(name="t", env={name: "1"})


def test_valid_env_names_are_kept() -> None:
    env = {"A": "1", "_B2": "2", "snake_case": "3"}
    assert CreateSandboxRequest(env=env).env == env
    assert TemplateSpec(name="t", env=env).env == env


@pytest.mark.parametrize(
    ("manager", "package"),
    [
        (PackageManager.PIP, "numpy\n"),
        (PackageManager.PIP, "numpy==1.0\n"),
        (PackageManager.NPM, "left-pad\n"),
    ],
)
def test_a_package_spec_with_a_trailing_newline_is_refused(
    manager: PackageManager, package: str
) -> None:
    with pytest.raises(ValidationError, match="not a valid"):
        InstallPackagesRequest(packages=[package], manager=manager)
    with pytest.raises(ValidationError, match="not a valid"):
        TemplateSpec(name="t", packages={manager.value: [package]})


@pytest.mark.parametrize("manager", ["pip", "npm"])
def test_a_bad_package_name_is_reported_under_packages(manager: str) -> None:
    with pytest.raises(ValidationError) as caught:
        InstallPackagesRequest.model_validate({"packages": ["six; rm -rf /"], "manager": manager})
    assert [error["loc"] for error in caught.value.errors()] == [("packages",)]


def test_an_unknown_manager_is_its_own_error_and_leaves_the_names_unchecked() -> None:
    with pytest.raises(ValidationError) as caught:
        InstallPackagesRequest.model_validate({"packages": ["six; rm"], "manager": "apt"})
    assert [error["loc"] for error in caught.value.errors()] == [("manager",)]


def test_whole_package_specs_are_kept() -> None:
    packages = {"pip": ["numpy==1.26", "pandas[excel]"], "npm": ["@scope/pkg@^1.2"]}
    assert TemplateSpec(name="t", packages=packages).packages.pip == packages["pip"]
