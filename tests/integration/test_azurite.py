"""Starting Azurite where one is already running: use it and say so, never adopt it silently."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from devhost import azurite

pytestmark = pytest.mark.integration


def test_an_azurite_this_run_did_not_start_is_named_used_and_left_running(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ports = [azurite.free_port() for _ in range(3)]
    orphan = azurite.start(tmp_path / "first", blob_port=ports[0], queue_port=ports[1], table_port=ports[2],
                           in_memory=True)
    try:
        with caplog.at_level(logging.WARNING, logger="devhost.azurite"):
            found = azurite.start(tmp_path / "second", blob_port=ports[0], queue_port=ports[1],
                                  table_port=ports[2], in_memory=True)
        assert found.adopted and found.connection_string == orphan.connection_string
        assert "did not start" in caplog.text and f"127.0.0.1:{ports[0]}/{ports[1]}/{ports[2]}" in caplog.text
        found.stop()
        assert orphan.process is not None and orphan.process.poll() is None, "not ours to stop"
    finally:
        orphan.stop()


def test_another_program_on_an_azurite_port_is_an_error_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"{port}.*in use by another program"):
            azurite.start(tmp_path, blob_port=port, in_memory=True)
