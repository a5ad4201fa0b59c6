"""The CLI's shared behaviour: help, error formatting, models list."""

import json
import subprocess
import sys

from ferkit.cli import main


def test_models_list_json(capsys):
    assert main(["models", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name": "baseline", "kind": "architecture"}.items() <= rows[0].items()


def test_bad_option_is_one_line_error(capsys):
    assert main(["models", "list", "--format", "xml"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --format must be human, json or quiet, not 'xml'"


def test_console_script_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "ferkit", "version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "0.1.0"


def test_usage_errors_print_usage_not_a_traceback(capsys):
    # typer's parser errors (its vendored click in newer releases) end as click's usage text.
    cases = [
        (["data", "cache", "a.csv", "b.npz", "--out", "x"], "Error: No such option: --out"),
        (["data", "cache"], "Error: Missing argument 'csv'."),
        (["no-such-command"], "Error: No such command 'no-such-command'."),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == message
        assert "--help' for help." in err


def test_face_detector_option_is_one_declaration_in_every_command(capsys):
    """--detector reads the same everywhere; serve's passes None on to its env settings."""
    for command in ("predict", "batch", "explain", "video", "webcam", "serve"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        default = "(default retinaface)" if command == "serve" else "[default: retinaface]"
        assert f"--detector <str> face detector: retinaface, yunet or haar {default}" in text, \
            (command, text)


def test_serve_takes_the_shared_options_and_leaves_unset_ones_to_its_settings(monkeypatch):
    seen = []
    monkeypatch.setattr("ferkit.serve.run_server", seen.append)
    monkeypatch.setenv("FERKIT_SERVE_BACKEND", "torch")
    assert main(["serve", "--detector", "haar", "--device", "cpu"]) == 0
    settings = seen[-1]
    assert (settings.detector, settings.device, settings.backend, settings.model) == \
        ("haar", "cpu", "torch", "default")  # backend from the environment, model its default
