"""The client is usable by consuming services: it imports nothing from `services/`."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_client_imports_no_service_module():
    code = (
        "import sys, common_core.client, common_core.client.events\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'services'))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )

    assert out.stdout.strip() == "[]"
