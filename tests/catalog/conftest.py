"""Catalog fixtures: a writer on moto's S3 server, and pyarrow's own S3 client for it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pyarrow.fs as pafs
import pytest

from aps_mirror.catalog.writer import CatalogWriter
from tests.catalog.factories import PREFIX


@pytest.fixture
def writer(s3, bucket) -> CatalogWriter:
    return CatalogWriter(s3, bucket, PREFIX)


@pytest.fixture
def arrow_s3(s3_endpoint) -> pafs.S3FileSystem:
    """pyarrow's S3 file system on the same server: how an analyst reads without our code."""
    endpoint = urlsplit(s3_endpoint)
    return pafs.S3FileSystem(endpoint_override=endpoint.netloc, scheme=endpoint.scheme,
                             access_key="test", secret_key="test", region="us-east-1")
