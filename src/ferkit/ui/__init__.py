"""The Streamlit app (``ferkit ui``): photo or camera, model choice, two models side by side.

Examples:
    From a shell: ``ferkit ui --port 8501``; from Python::

        from ferkit.ui import launch
        launch(port=8501)          # blocks until Ctrl-C
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ferkit.errors import FerkitError

APP_PATH = Path(__file__).resolve().parent / "app.py"

__all__ = ["APP_PATH", "launch", "streamlit_command"]


def streamlit_command(*, host: str = "127.0.0.1", port: int = 8501, model: str = "default",
                      extra: Sequence[str] = ()) -> list[str]:
    """The ``streamlit run`` command line: headless, offline, no usage statistics."""
    return [sys.executable, "-m", "streamlit", "run", str(APP_PATH),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.maxUploadSize", "8",
            "--global.developmentMode", "false", "--client.toolbarMode", "minimal", *extra,
            "--", "--model", model]


def launch(*, host: str = "127.0.0.1", port: int = 8501, model: str = "default") -> int:
    """Run the Streamlit app until it exits; returns its exit status."""
    if importlib.util.find_spec("streamlit") is None:
        raise FerkitError("the UI needs Streamlit: pip install 'ferkit[ui]'")
    print(f"ferkit: UI on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        return subprocess.call(streamlit_command(host=host, port=port, model=model))
    except KeyboardInterrupt:
        return 130
