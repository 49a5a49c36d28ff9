"""Secrets out of files: read a secret from an environment variable or a file, and redact
the password of a DSN before it can reach a message.

>>> redact_dsn("postgresql://app:s3cret@db:5432/driftgate?sslmode=require")
'postgresql://app:***@db:5432/driftgate?sslmode=require'
>>> redact_dsn("host=db user=app password=s3cret dbname=x")
'host=db user=app password=*** dbname=x'
>>> redact_dsn("/var/lib/driftgate/predictions.sqlite3")
'/var/lib/driftgate/predictions.sqlite3'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_URI_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*):[^@/\s]*@", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('[^']*'|[^\s&]+)", re.I)


def redact_dsn(text: str) -> str:
    """``text`` with the password of every DSN in it (URI or key=value form) replaced."""
    text = _URI_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)


def read_secret(env: str | None = None, file: str | Path | None = None) -> str:
    """The secret in environment variable ``env`` or in ``file`` (trailing whitespace and
    newline stripped); ValueError naming the variable or file (never the value) if absent."""
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"the environment variable {env} is not set")
        return value.strip()
    if file is not None:
        path = Path(file).expanduser()
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the secret file {path}: {exc.strerror}") from None
        if not value:
            raise ValueError(f"the secret file {path} is empty")
        return value
    raise ValueError("give an environment variable or a file")
