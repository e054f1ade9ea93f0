"""The S3-compatible object store a cluster keeps snapshot chunks in: a real moto server
(a subprocess on a free loopback port) and one bucket, as the Helm chart configures
sandbox-svc against a real one. Not a mock: sandbox-svc speaks S3 to it over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import boto3

from llmsafespace.devstack.ports import free_port

BUCKET = "llmsafespace-snapshots"
PREFIX = "chunks/"
START_SECONDS = 60.0
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class ObjectStore:
    """Start with `start()`, stop with `stop()`; `environ()` is what sandbox-svc needs."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._server: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        self._server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                assert self._server.poll() is None, "moto server exited"
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.1)
        self._client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        self._client.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            self._server.wait(timeout=10)

    def environ(self) -> dict[str, str]:
        """The settings that point sandbox-svc's chunk store at this bucket."""
        return {
            "SANDBOX_SVC_SNAPSHOT_S3_BUCKET": BUCKET,
            "SANDBOX_SVC_SNAPSHOT_S3_ENDPOINT": self.url,
            "SANDBOX_SVC_SNAPSHOT_S3_PREFIX": PREFIX,
            **CREDENTIALS,
        }

    def chunks(self) -> set[str]:
        """The names of the chunks stored."""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
        return {item["Key"][len(PREFIX) :] for page in pages for item in page.get("Contents", [])}

    def lose(self, chunks: list[str]) -> None:
        """The store loses these chunks (reading one is then an S3 error)."""
        for name in chunks:
            self._client.delete_object(Bucket=BUCKET, Key=PREFIX + name)
