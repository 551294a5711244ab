"""Who may use the server: the accounts of a users file, passwords kept as salted scrypt hashes
and checked in constant time.

The file has one account a line, `name:HASH` or `name:HASH:admin` (blank lines and lines
starting with # are skipped); `python -m assistant.web.accounts FILE NAME [--admin]` adds an
account or sets its password (asked twice, never echoed). Names are letters, digits, `.`,
`_` and `-`. `local` is taken: it is the one user of a server without accounts, and whoever
holds its API key. Not here: sessions and the login page (assistant/web/gate.py).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError, BadSetting
from assistant.store import LOCAL

NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # about 16 MB and 50 ms a check


@dataclass(frozen=True)
class User:
    name: str  # owns the chats saved under it
    admin: bool = False  # may load another model for everyone


class BadUsersFile(AssistantError, ValueError):
    def __init__(self, path: str | Path, line: int | None, reason: str):
        where = f", line {line}" if line else ""
        super().__init__(f"users file {path}{where}: {reason}")


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$digest`, salt and digest in base64."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "$".join(["scrypt", *(str(SCRYPT[k]) for k in "nrp"),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def _parse_hash(stored: str) -> tuple[dict, bytes, bytes]:
    kind, n, r, p, salt, digest = stored.split("$")
    if kind != "scrypt":
        raise ValueError(f"unknown hash kind {kind!r} (scrypt)")
    return ({"n": int(n), "r": int(r), "p": int(p)}, base64.b64decode(salt, validate=True),
            base64.b64decode(digest, validate=True))


def password_matches(password: str, stored: str) -> bool:
    params, salt, digest = _parse_hash(stored)
    given = hashlib.scrypt(password.encode(), salt=salt, dklen=len(digest), maxmem=2**26,
                           **params)
    return hmac.compare_digest(given, digest)


class Accounts:
    """The accounts of a users file, read once at start."""

    def __init__(self, hashes: dict[str, str], admins: set[str]):
        self._hashes, self._admins = hashes, admins
        self._decoy = hash_password(secrets.token_hex(8))  # unknown names cost a check too

    @classmethod
    def read(cls, path: str | Path) -> Accounts:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise BadUsersFile(path, None, f"cannot be read ({e})") from None
        hashes, admins = {}, set()
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            stored, _, role = rest.partition(":")
            if not NAME.fullmatch(name):
                raise BadUsersFile(path, number, f"{name!r} is not a name (letters, digits, "
                                   "'.', '_', '-')")
            if name == LOCAL:
                raise BadUsersFile(path, number, f"'{LOCAL}' is the single user of a server "
                                   "without accounts; choose another name")
            if name in hashes:
                raise BadUsersFile(path, number, f"{name!r} is there twice")
            if role not in ("", "admin"):
                raise BadUsersFile(path, number, f"the role after the hash must be 'admin' or "
                                   f"nothing, not {role!r}")
            try:
                _parse_hash(stored)
            except (ValueError, TypeError):
                raise BadUsersFile(path, number, "the password is not a hash this app wrote "
                                   "(python -m assistant.web.accounts FILE NAME)") from None
            hashes[name] = stored
            if role:
                admins.add(name)
        if not hashes:
            raise BadUsersFile(path, None, "it has no account")
        return cls(hashes, admins)

    def __contains__(self, name: str) -> bool:
        return name in self._hashes

    def user(self, name: str) -> User:
        return User(name, name in self._admins)

    def check(self, name: str, password: str) -> User | None:
        """The user, if `password` is theirs; the same work whether the name exists or not."""
        stored = self._hashes.get(name, self._decoy)
        matches = password_matches(password, stored)
        return self.user(name) if matches and name in self._hashes else None


def add(path: Path, name: str, password: str, admin: bool) -> None:
    """Add `name` to the users file (or set its password and role), keeping every other line."""
    if not NAME.fullmatch(name) or name == LOCAL:
        raise BadSetting(f"{name!r} cannot be an account name (letters, digits, '.', '_', "
                         f"'-'; not '{LOCAL}')")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    entry = f"{name}:{hash_password(password)}" + (":admin" if admin else "")
    kept = [line for line in lines if line.partition(":")[0].strip() != name]
    path.write_text("\n".join([*kept, entry]) + "\n", encoding="utf-8")
    path.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.web.accounts",
                                     description="Add an account to a users file (--auth FILE), "
                                     "or set its password.")
    parser.add_argument("file", type=Path)
    parser.add_argument("name")
    parser.add_argument("--admin", action="store_true", help="may load another model")
    args = parser.parse_args(argv)
    password = getpass.getpass(f"Password for {args.name}: ")
    if len(password) < 8:
        print("error: use at least 8 characters", file=sys.stderr)
        return 1
    if getpass.getpass("Again: ") != password:
        print("error: the two passwords differ", file=sys.stderr)
        return 1
    try:
        add(args.file, args.name, password, args.admin)
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.name} is in {args.file}" + (" (admin)" if args.admin else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
