"""Make the compose deployment's Kafka credentials: a CA and the broker's certificate, and one SCRAM user per
principal of the catalogue's ACLs (``services.security.acls``), each with its own password.

    python -m deploy.compose.credentials            # writes deploy/compose/secrets/ (git ignores it)
    python -m deploy.compose.credentials --force    # new certificates and passwords (then a fresh volume)

Run it once on the machine that runs ``docker compose``, before the first ``up``; it needs a JDK's
``keytool`` (as ``make run`` does). It writes, in ``secrets/``:

* ``tls/ca.pem`` (the CA every client trusts), ``tls/broker.p12`` and ``tls/truststore.p12`` (the broker's
  key and chain, and the CA, as PKCS12 stores under a random password); the CA's own key is thrown away;
* ``kafka.env``: what only the broker reads (the stores' password, the admin's password, and every user's
  SCRAM credential, with which ``kafka-start.sh`` formats the broker's storage);
* ``circles-<name>.env`` per user (``CIRCLES_KAFKA_USERNAME`` and ``CIRCLES_KAFKA_PASSWORD``): each compose
  service reads only its own service's file; ``circles-admin.env`` is for the one-shot that creates the
  topics and applies the ACLs.

Compose reads the env files on the host (they stay 0600) and hands each container its own variables.
An existing ``secrets/`` is kept (restarts must find the same passwords) unless ``--force``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from services.dev.broker import local_kafka
from services.security.acls import ADMIN_USER, users

HERE = Path(__file__).resolve().parent
SECRETS = HERE / "secrets"
BROKER_NAMES = ("dns:kafka", "dns:localhost", "ip:127.0.0.1")
"""The broker's certificate names: ``kafka`` for the services, localhost and 127.0.0.1 for the host port."""
CERT_DAYS = 825


def env_file_of(user: str) -> str:
    return f"{user}.env"


def _write_private(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))
    path.chmod(0o600)


def make(folder: Path = SECRETS, *, force: bool = False) -> list[Path]:
    """Write the credentials into ``folder``; returns the files written (none when they exist already)."""
    if (folder / "kafka.env").exists() and not force:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    store_password = secrets.token_urlsafe(24)
    tls = folder / "tls"
    local_kafka().make_certificates(tls, store_password, days=CERT_DAYS, names=BROKER_NAMES)
    for path in tls.iterdir():  # the broker (uid 1000 in its image) reads them; the stores are encrypted
        path.chmod(0o644)
    tls.chmod(0o755)
    passwords = {user: secrets.token_urlsafe(24) for user in [ADMIN_USER, *users()]}
    written = sorted(tls.iterdir())
    _write_private(
        folder / "kafka.env",
        [
            "# The broker's secrets (for kafka-start.sh), made by python -m deploy.compose.credentials",
            f"KAFKA_STORE_PASSWORD={store_password}",
            f"CIRCLES_KAFKA_ADMIN_PASSWORD={passwords[ADMIN_USER]}",
            "CIRCLES_SCRAM_USERS=" + " ".join(f"{user}={password}" for user, password in passwords.items()),
        ],
    )
    written.append(folder / "kafka.env")
    for user, password in passwords.items():
        path = folder / env_file_of(user)
        _write_private(
            path,
            [
                f"# The Kafka principal {user}: made by python -m deploy.compose.credentials",
                f"CIRCLES_KAFKA_USERNAME={user}",
                f"CIRCLES_KAFKA_PASSWORD={password}",
            ],
        )
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make the compose deployment's Kafka credentials")
    parser.add_argument("--dir", type=Path, default=SECRETS, help="where (default: deploy/compose/secrets)")
    parser.add_argument("--force", action="store_true", help="replace existing credentials")
    args = parser.parse_args(argv)
    written = make(args.dir, force=args.force)
    if not written:
        print(f"{args.dir} holds credentials already (--force to replace them)")
        return 0
    print(f"wrote {len(written)} files in {args.dir} (passwords in the env files, never printed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
