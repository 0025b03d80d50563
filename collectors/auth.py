"""Webhook sender authentication: bearer tokens and HMAC-SHA256 body signatures."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sla.config import ReceiverAuthConfig, ReceiversConfig
from sla.errors import ConfigError

SIGNATURE_PREFIX = "sha256="
DEFAULT_SIGNATURE_HEADER = "X-Hub-Signature-256"


class Authenticator(Protocol):
    """Decides whether a request comes from the configured sender."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True when the request carries valid credentials; never raises on bad input."""


@dataclass(frozen=True)
class BearerAuth:
    """`Authorization: Bearer <token>` with the configured token."""

    token: bytes = field(repr=False)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Compare the presented token in constant time."""
        scheme, _, presented = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(errors="surrogatepass"), self.token)


@dataclass(frozen=True)
class HmacAuth:
    """`<header>: sha256=<hex>`, the HMAC-SHA256 of the raw body under the shared secret."""

    secret: bytes = field(repr=False)
    header: str = DEFAULT_SIGNATURE_HEADER

    def sign(self, body: bytes) -> str:
        """The header value a sender computes for `body`."""
        return SIGNATURE_PREFIX + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Recompute the signature of `body` and compare in constant time."""
        presented = headers.get(self.header, "").strip()
        if not presented.startswith(SIGNATURE_PREFIX):
            return False
        # Senders differ in hex case; the prefix is already known to be lowercase.
        expected = self.sign(body).encode()
        return hmac.compare_digest(presented.lower().encode(errors="surrogatepass"), expected)


def load_authenticators(
    config: ReceiversConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    base_dir: Path = Path(),
) -> dict[str, Authenticator]:
    """An authenticator per sender in `config.auth`, secrets read now so problems show at start.

    Relative secret files are found under `base_dir` (the config file's directory). Raises
    ConfigError naming the missing variable or file, or a file others may read.
    """
    return {
        source: _authenticator(source, auth, environ, base_dir)
        for source, auth in config.auth.items()
    }


def _authenticator(
    source: str, auth: ReceiverAuthConfig, environ: Mapping[str, str], base_dir: Path
) -> Authenticator:
    where = f"receivers.auth.{source}"
    if auth.kind == "bearer":
        return BearerAuth(read_secret(where, auth.token_env, auth.token_file, environ, base_dir))
    secret = read_secret(where, auth.hmac_secret_env, auth.hmac_secret_file, environ, base_dir)
    return HmacAuth(secret, auth.signature_header or DEFAULT_SIGNATURE_HEADER)


def read_secret(
    where: str,
    env: str | None,
    file: str | None,
    environ: Mapping[str, str],
    base_dir: Path,
) -> bytes:
    """A secret from environment variable `env` or from `file` (under `base_dir` when
    relative), which nobody but its owner may read; ConfigError names `where` in the config."""
    if env is not None:
        text = environ.get(env, "").strip()
        if not text:
            raise ConfigError(f"{where}: environment variable {env} is not set or empty")
        return text.encode()
    if file is None:
        raise ConfigError(f"{where}: no secret configured")
    path = base_dir / file
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{where}: secret file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
            )
        # Secret files usually end with a newline that is not part of the secret.
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{where}: secret file {path} is empty")
    return value
