"""Files and packages in a sandbox: paths, listings, chunked transfers and installs."""

import posixpath
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from .base import Contract, Request
from .caller import Caller
from .errors import ErrorCode, ServiceError
from .ids import ExecutionId, SandboxId

FILE_ROOTS = ("/workspace", "/tmp")
MAX_PATH_BYTES = 4096
CHUNK_BYTES = 256 * 1024  # one NATS message of a transfer
TRANSFER_WINDOW = 8  # chunks in flight before the sender waits for an acknowledgement
# A listing's entries take at most this much JSON (more: `truncated`): a listing is one
# NATS reply, and NATS carries 1 MiB in a message. The agent, which lists, keeps its own
# copy (it imports nothing); a test checks them equal.
MAX_LISTING_BYTES = 896 * 1024
MAX_PACKAGES = 50

# Headers of the messages on a transfer subject (the body is the raw chunk).
DONE_HEADER = "Llmsafespace-Done"  # the last message; carries the sha256
SHA256_HEADER = "Llmsafespace-Sha256"
ABORT_HEADER = "Llmsafespace-Abort"
ERROR_HEADER = "Llmsafespace-Error"  # the body is an error envelope


def check_path(path: str, *, directory: bool = False) -> str:
    """The normalized absolute path, or a `ServiceError`: `invalid_path` for a NUL byte, a
    `..` or a place outside /workspace and /tmp (symlinks are resolved later, inside the
    sandbox); `invalid_request` for a trailing slash, unless the path names a directory
    (`directory`): dropped, it made `a.txt/` read a.txt, and `dir/` write a file."""
    if "\x00" in path or len(path.encode()) > MAX_PATH_BYTES or not path.startswith("/"):
        raise ServiceError(ErrorCode.INVALID_PATH, "a path must be absolute, without NUL bytes")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ServiceError(ErrorCode.INVALID_PATH, "a path must not contain '..'")
    clean = posixpath.join("/", *parts)
    if not any(clean == root or clean.startswith(root + "/") for root in FILE_ROOTS):
        raise ServiceError(ErrorCode.INVALID_PATH, "paths must be inside /workspace or /tmp")
    if path.rsplit("/", 1)[1] in ("", ".") and not directory:  # `dir/`, `dir/.`
        raise ServiceError(ErrorCode.INVALID_REQUEST, f"{path}: a file's path takes no trailing /")
    return clean


def _valid_path(path: str) -> str:
    try:
        return check_path(path)
    except ServiceError as exc:
        raise ValueError(exc.message) from exc


SandboxPath = Annotated[str, AfterValidator(_valid_path)]


class FileInfo(Contract):
    """One entry of a listing (or what a write or a download found)."""

    path: str
    name: str
    size: int
    is_directory: bool
    modified_at: datetime
    created_at: datetime = Field(description="The inode's change time (Linux keeps no birth time)")
    mode: str = Field(description="Permission bits in octal, e.g. 0644")
    is_symlink: bool = Field(
        default=False,
        description="A symbolic link, described as itself (`isDirectory` is false, `size` "
        "is the length of its target)",
    )
    symlink_target: str | None = Field(
        default=None, description="What a symlink points to, as written (not resolved)"
    )


class FileListing(Contract):
    """`GET /sandboxes/{id}/files` reply."""

    path: str
    files: list[FileInfo]
    truncated: bool = False


class ListFiles(Contract):
    """`cmd.exec.files.list`."""

    caller: Caller
    sandbox_id: SandboxId
    path: SandboxPath
    recursive: bool = False


class DeleteFile(Contract):
    """`cmd.exec.files.delete`: a file, or a directory with `recursive`."""

    caller: Caller
    sandbox_id: SandboxId
    path: SandboxPath
    recursive: bool = False


class FileDeleted(Contract):
    path: str


class OpenUpload(Contract):
    """`cmd.exec.files.upload`: the reply names the subject the chunks go to. With
    `archive` the body is a tar.gz unpacked into the directory `path`."""

    caller: Caller
    sandbox_id: SandboxId
    path: SandboxPath
    size: int | None = Field(default=None, ge=0, description="Declared size, when known")
    archive: bool = False


class OpenDownload(Contract):
    """`cmd.exec.files.download`: a file (or a byte range of it), or with `archive` a
    directory as tar.gz; the reply names the subject to pull chunks from."""

    caller: Caller
    sandbox_id: SandboxId
    path: SandboxPath
    offset: int = Field(default=0, ge=0)
    length: int | None = Field(default=None, ge=0)
    archive: bool = False


class TransferOpened(Contract):
    """An open transfer: chunks flow on `subject` (see the module's headers)."""

    subject: str
    chunk_bytes: int = CHUNK_BYTES
    window: int = TRANSFER_WINDOW
    max_bytes: int | None = Field(default=None, description="Upload limit")
    info: FileInfo | None = Field(default=None, description="Download: the file as opened")
    etag: str | None = None
    offset: int = 0
    length: int | None = Field(default=None, description="Download: bytes that will follow")


class FileWritten(Contract):
    """`PUT /sandboxes/{id}/files/{path}` reply."""

    path: str
    size: int
    created_at: datetime
    sha256: str
    files: int | None = Field(default=None, description="Archive uploads: entries unpacked")


class PackageManager(StrEnum):
    PIP = "pip"
    NPM = "npm"


class FileEvent(Contract):
    """`evt.exec.<sandbox>.<id>.file_written|file_deleted|packages_installed|packages_failed`:
    who changed what in a sandbox (archives: `path` is the directory, `files` the entries)."""

    execution_id: ExecutionId
    sandbox_id: SandboxId
    user_id: str
    path: str | None = None
    size: int | None = None
    files: int | None = None
    packages: list[str] | None = None
    manager: PackageManager | None = None
    exit_code: int | None = None
    reason: str | None = Field(default=None, description="Why an install failed before running")


# PEP 508 name with optional extras and version specifiers; npm (scoped) name[@version].
_PIP = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?"
    r"((===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+(,(===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?$"
)
_NPM = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9.^~<>=|*+ -]+)?$")
_PACKAGE_PATTERNS = {PackageManager.PIP: _PIP, PackageManager.NPM: _NPM}


def valid_packages(manager: PackageManager, packages: list[str]) -> list[str]:
    """`packages` when each is a whole package spec of `manager` (what an install or a
    template build hands to pip or npm as one argument); otherwise a ValueError naming it."""
    pattern = _PACKAGE_PATTERNS[manager]
    for package in packages:
        if not pattern.fullmatch(package) or package.endswith(" "):
            raise ValueError(f"{package[:100]!r} is not a valid {manager} package name")
    return packages


class InstallPackagesRequest(Request):
    """`POST /sandboxes/{id}/packages` body."""

    manager: PackageManager = PackageManager.PIP  # before `packages`, whose check needs it
    packages: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=MAX_PACKAGES
    )
    timeout: float = Field(default=300, gt=0, le=3600, strict=True)
    wait: bool = Field(
        default=True,
        strict=True,
        description="false: answer 202 with the executionId once the install has started; "
        "its output and result follow on the WebSocket (`resume` from seq 0)",
    )

    @field_validator("packages")
    @classmethod
    def _valid_names(cls, packages: list[str], info: ValidationInfo) -> list[str]:
        """Reported under `packages` (a model's own check is reported under no field);
        an invalid `manager` is its own error, and leaves the names unchecked."""
        manager = info.data.get("manager")
        return valid_packages(manager, packages) if manager is not None else packages


class InstallPackages(Contract):
    """`cmd.exec.packages.install` (replies with the result) or `cmd.exec.packages.start`
    (replies once started). Either way the install's output is published like a streamed
    execution's, under `execution_id`."""

    caller: Caller
    sandbox_id: SandboxId
    execution_id: ExecutionId
    request: InstallPackagesRequest
