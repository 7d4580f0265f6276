"""fsspec storage options as the Rust `object_store` options that deltalake and lance take.

A job gives storage options once, in fsspec's words (s3fs: key, secret, client_kwargs.endpoint_url; adlfs:
account_name, account_key, connection_string); the table libraries read the same stores through
object_store, whose keys differ. Keys already in object_store's words pass through unchanged.
"""

from __future__ import annotations

from typing import Any

_S3 = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY", "token": "AWS_SESSION_TOKEN",
       "endpoint_url": "AWS_ENDPOINT_URL", "region_name": "AWS_REGION", "profile": "AWS_PROFILE"}
_AZURE = {"account_name": "AZURE_STORAGE_ACCOUNT_NAME", "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
          "sas_token": "AZURE_STORAGE_SAS_TOKEN", "connection_string": "AZURE_STORAGE_CONNECTION_STRING",
          "tenant_id": "AZURE_STORAGE_TENANT_ID", "client_id": "AZURE_STORAGE_CLIENT_ID",
          "client_secret": "AZURE_STORAGE_CLIENT_SECRET"}


def object_store_options(url: str, options: dict[str, Any]) -> dict[str, str] | None:
    """`options` (fsspec's, for `url`) in object_store's keys; None for a local path."""
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    if protocol == "file":
        return None
    flat = {k: v for k, v in options.items() if not isinstance(v, dict)}
    flat.update({k: v for k, v in (options.get("client_kwargs") or {}).items() if k in ("endpoint_url", "region_name")})
    names = _S3 if protocol in ("s3", "s3a") else _AZURE if protocol in ("az", "abfs", "abfss") else {}
    out = {names.get(k, k): str(v) for k, v in flat.items() if k not in ("anon", "use_ssl")}
    endpoint = out.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        out.setdefault("AWS_ALLOW_HTTP", "true")
    if protocol in ("s3", "s3a"):
        out.setdefault("AWS_REGION", "us-east-1")
        # commits are made atomic by conditional PUTs (S3, MinIO, moto), not by a lock table
        out.setdefault("AWS_CONDITIONAL_PUT", "etag")
    if protocol in ("az", "abfs", "abfss") and "AZURE_STORAGE_CONNECTION_STRING" in out:
        _from_connection_string(out)
    return out


def _from_connection_string(out: dict[str, str]) -> None:
    """object_store takes no connection string: its account, key and endpoint, one by one."""
    parts = dict(p.split("=", 1) for p in out.pop("AZURE_STORAGE_CONNECTION_STRING").split(";") if "=" in p)
    out.setdefault("AZURE_STORAGE_ACCOUNT_NAME", parts.get("AccountName", ""))
    if "AccountKey" in parts:
        out.setdefault("AZURE_STORAGE_ACCOUNT_KEY", parts["AccountKey"])
    if "BlobEndpoint" in parts:
        out.setdefault("AZURE_STORAGE_ENDPOINT", parts["BlobEndpoint"])
        if parts["BlobEndpoint"].startswith("http://"):
            out.setdefault("AZURE_ALLOW_HTTP", "true")
