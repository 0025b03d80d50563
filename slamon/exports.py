"""Where the pipeline workers' Parquet export lives: a directory, or a bucket reached with keys
read from the environment or files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from collectors.auth import read_secret
from pipeline.parquet import ExportTarget, s3_location
from sla.config import ParquetExportConfig, SlamonConfig
from sla.errors import ConfigError


def export_target(
    parquet: ParquetExportConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    base_dir: Path = Path(),
) -> ExportTarget:
    """The directory of `parquet.path`, or its place on the S3-compatible store, keys read now
    so that a missing one shows at start (relative key files are under `base_dir`)."""
    if parquet.s3 is None:
        return Path(parquet.path)
    s3 = parquet.s3
    where = "store.parquet.s3"
    access_key_id = read_secret(
        f"{where}.access_key_id", s3.access_key_id_env, s3.access_key_id_file, environ, base_dir
    )
    secret_access_key = read_secret(
        f"{where}.secret_access_key",
        s3.secret_access_key_env,
        s3.secret_access_key_file,
        environ,
        base_dir,
    )
    return s3_location(
        parquet.path,
        access_key_id=access_key_id.decode(),
        secret_access_key=secret_access_key.decode(),
        endpoint=s3.endpoint,
        region=s3.region,
    )


def export_to_read(
    config: SlamonConfig,
    location: str,
    *,
    environ: Mapping[str, str] = os.environ,
    base_dir: Path = Path(),
) -> ExportTarget:
    """The export at `location` (`--parquet`): a directory, or an ``s3://`` URL on the store
    that `store.parquet.s3` of the config reaches."""
    if not location.startswith("s3://"):
        return Path(location)
    configured = config.store.parquet
    if configured is None or configured.s3 is None:
        raise ConfigError(
            f"--parquet {location}: set store.parquet.s3 in the config (endpoint and keys)"
        )
    try:
        wanted = ParquetExportConfig(path=location, s3=configured.s3)
    except ValueError as exc:
        raise ConfigError(f"--parquet {location}: not s3://<bucket>/<prefix>") from exc
    return export_target(wanted, environ=environ, base_dir=base_dir)
