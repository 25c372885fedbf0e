"""What a local stack keeps across restarts and shares with workers on other machines.

Airflow's Fernet key (encrypted connections and variables in the metadata DB) and the api-server's JWT secret
must be the same in every process of one deployment and must survive a restart — a new random pair per start
(as before) made a restarted stack unable to read what it had written, and a second machine unable to join.
They are generated once into ``<state>/secrets.json`` (mode 0600) and read back; a worker on another machine
gets a copy of that file (``vodflow stack --worker-only --secrets <file>``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

SECRETS_FILE = "secrets.json"


def stack_secrets(state_dir: Path, copy_from: Path | None = None) -> dict[str, str]:
    """``{"FERNET_KEY", "JWT_SECRET"}`` of this deployment: from ``copy_from`` (a worker joining), else the
    state directory's file, else new ones written there."""
    path = state_dir / SECRETS_FILE
    if copy_from is not None:
        values = json.loads(copy_from.read_text())
    elif path.exists():
        return json.loads(path.read_text())
    else:
        values = {"FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                  "JWT_SECRET": secrets.token_urlsafe(32)}
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"FERNET_KEY": values["FERNET_KEY"], "JWT_SECRET": values["JWT_SECRET"]}, out)
    return json.loads(path.read_text())
