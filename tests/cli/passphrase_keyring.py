"""A keyring backend for tests that asks for a passphrase in every process that reads it, as
``keyrings.cryptfile`` and ``keyrings.alt``'s ``EncryptedKeyring`` do: items in a JSON file
(``$FAKE_KEYRING_FILE``), and each process's first use "asks" by logging a line to
``$FAKE_PASSPHRASE_LOG`` (the test counts them). Chosen with
``PYTHON_KEYRING_BACKEND=tests.cli.passphrase_keyring.EncryptedKeyring``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class EncryptedKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]
    _asked = False

    @property
    def keyring_key(self) -> str:  # what the real ones prompt for
        if not EncryptedKeyring._asked:
            with open(os.environ["FAKE_PASSPHRASE_LOG"], "a") as log:
                log.write(f"{os.getpid()}\n")
            EncryptedKeyring._asked = True
        return "passphrase"

    def _items(self) -> dict[str, str]:
        self.keyring_key  # noqa: B018 - reading it is what asks
        path = Path(os.environ["FAKE_KEYRING_FILE"])
        return json.loads(path.read_text()) if path.exists() else {}

    def _save(self, items: dict[str, str]) -> None:
        Path(os.environ["FAKE_KEYRING_FILE"]).write_text(json.dumps(items))

    def get_password(self, service: str, username: str) -> str | None:
        return self._items().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        items = self._items()
        items[f"{service}/{username}"] = password
        self._save(items)

    def delete_password(self, service: str, username: str) -> None:
        items = self._items()
        if items.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._save(items)
