"""The S3 and Azure test servers, described by ``ICECHUNK_TEST_*`` environment variables.

``cargo xtask docker-up`` starts the servers and writes the variables to
``target/xtask/services.env``; ``cargo xtask python-test --full`` passes them to pytest. A
service test whose variables are missing, or whose server does not answer, fails: it is
never skipped.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

import icechunk

HOW_TO_START = (
    "Service tests need the S3 and Azure test servers: start them with `cargo xtask docker-up` "
    "and run `cargo xtask python-test --full` (or load target/xtask/services.env into the "
    "environment before running pytest)."
)


def required(name: str) -> str:
    """The value of an environment variable; fails the test when it is missing."""
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"environment variable {name} is not set. {HOW_TO_START}", pytrace=False)
    return value


def check_reachable(endpoint: str, what: str) -> None:
    """Fails the test unless something listens at ``endpoint``."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as e:
        pytest.fail(
            f"the {what} server at {endpoint} does not answer ({e}). {HOW_TO_START}",
            pytrace=False,
        )


def unique_prefix() -> str:
    """A prefix that no other test or earlier run uses."""
    return f"icechunk-python-tests/{uuid.uuid4().hex}"


def s3_storage(prefix: str | None = None) -> icechunk.Storage:
    """A fresh S3 location on the test server."""
    endpoint = required("ICECHUNK_TEST_S3_ENDPOINT")
    bucket = required("ICECHUNK_TEST_S3_BUCKET")
    region = required("ICECHUNK_TEST_S3_REGION")
    access_key_id = required("ICECHUNK_TEST_S3_ACCESS_KEY_ID")
    secret_access_key = required("ICECHUNK_TEST_S3_SECRET_ACCESS_KEY")
    check_reachable(endpoint, "S3")
    return icechunk.Storage.s3(
        bucket,
        prefix if prefix is not None else unique_prefix(),
        endpoint=endpoint,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        allow_http=endpoint.startswith("http://"),
        max_retries=3,
        retry_timeout_secs=30,
    )


def azure_storage(prefix: str | None = None) -> icechunk.Storage:
    """A fresh Azure Blob Storage location on the test server."""
    endpoint = required("ICECHUNK_TEST_AZURE_ENDPOINT")
    account = required("ICECHUNK_TEST_AZURE_ACCOUNT")
    access_key = required("ICECHUNK_TEST_AZURE_ACCESS_KEY")
    container = required("ICECHUNK_TEST_AZURE_CONTAINER")
    check_reachable(endpoint, "Azure")
    return icechunk.Storage.azure(
        container,
        prefix if prefix is not None else unique_prefix(),
        account=account,
        access_key=access_key,
        endpoint=endpoint,
        allow_http=endpoint.startswith("http://"),
        max_retries=3,
        retry_timeout_secs=30,
    )
