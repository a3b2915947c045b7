"""Write the stack's .env from .env.example with a fresh random value for every empty secret.

    python3 deploy/new_env.py            # writes .env beside docker-compose.yaml
    python3 deploy/new_env.py PATH       # elsewhere; never overwrites an existing file

Every `NAME=` line left empty in .env.example is a secret compose requires; API_KEY (the UI's)
takes the single key generated for API_KEYS. Standard library only.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMPTY = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=\s*$")
# Which secret's value another one repeats (the UI sends one of the keys the API accepts).
SAME_AS = {"API_KEY": "API_KEYS"}
# Secrets with a format of their own: Airflow's Fernet key is 32 random bytes, urlsafe base64.
MAKE = {"AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()}


def filled(example: str) -> str:
    """`example` with each empty assignment given 48 random hex digits (safe in URLs), or a
    value in its own format (`MAKE`)."""
    values: dict[str, str] = {}
    lines = []
    for line in example.splitlines():
        match = EMPTY.match(line)
        if match:
            name = match["name"]
            made = MAKE.get(name, lambda: secrets.token_hex(24))
            values[name] = values.get(SAME_AS.get(name, ""), "") or made()
            line = f"{name}={values[name]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else ROOT / ".env"
    text = filled((ROOT / ".env.example").read_text())
    try:  # created readable by its owner only, and never over an existing file
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        sys.exit(f"{target} exists: edit it, or move it away first (it holds the live secrets)")
    with open(descriptor, "w") as env_file:
        env_file.write(text)
    print(f"wrote {target}: every secret is new; keep the file private")


if __name__ == "__main__":
    main(sys.argv[1:])
