"""The Streamlit app (``ferkit ui``): photo or camera, model choice, two models side by side.

Examples:
    From a shell: ``ferkit ui --port 8501``; from Python::

        from ferkit.ui import launch
        launch(port=8501)          # blocks until Ctrl-C
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ferkit.errors import FerkitError

APP_PATH = Path(__file__).resolve().parent / "app.py"

__all__ = ["APP_PATH", "launch", "streamlit_command"]


def streamlit_command(*, host: str = "127.0.0.1", port: int = 8501, model: str = "default",
                      allow_paths: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The ``streamlit run`` command line: headless, offline, no usage statistics, no error
    details (tracebacks with server paths) in the browser."""
    return [sys.executable, "-m", "streamlit", "run", str(APP_PATH),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.maxUploadSize", "8",
            "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
            "--client.showErrorDetails", "none", *extra,
            "--", "--model", model, *(["--allow-paths"] if allow_paths else [])]


def launch(*, host: str = "127.0.0.1", port: int = 8501, model: str = "default",
           allow_paths: bool = False) -> int:
    """Run the Streamlit app until it exits; returns its exit status.

    Streamlit runs as a child process that ends with this one: SIGTERM, SIGHUP and Ctrl-C
    are passed on to it, and on Linux the kernel stops it if this process dies any other
    way (``PR_SET_PDEATHSIG``), so no server is left running unowned.
    """
    if importlib.util.find_spec("streamlit") is None:
        raise FerkitError("the UI needs Streamlit: pip install 'ferkit[ui]'")
    print(f"ferkit: UI on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    child = subprocess.Popen(streamlit_command(host=host, port=port, model=model,
                                               allow_paths=allow_paths),
                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def forward(signum, _frame):
        child.send_signal(signum)

    handled = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, forward) for s in handled}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the whole group: let Streamlit finish
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if child.poll() is None:
            child.kill()
            child.wait()


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM when its parent dies."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
