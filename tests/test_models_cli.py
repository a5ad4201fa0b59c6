"""``ferkit models``: shipped and user models listed, added, shown, used by name, removed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import ferkit
from ferkit.cli import main
from ferkit.weights import DEFAULT_NAME, list_user_models, user_models_dir


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _run(capsys, *args) -> tuple[int, str, str]:
    status = main(["models", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_the_shipped_default(capsys, home):
    status, out, _ = _run(capsys, "list")
    assert status == 0
    shipped = out.split("Shipped weights")[1].split("Your models")[0]
    assert f"{DEFAULT_NAME} (default)" in shipped and "1x48x48" in shipped
    assert "fer2013_privatetest_accuracy 0." in shipped
    assert f"Your models ({home / 'models'})" in out and "ferkit models add" in out
    status, out, _ = _run(capsys, "list", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows[DEFAULT_NAME]["kind"] == "shipped weights"
    assert rows[DEFAULT_NAME]["metrics"]["fer2013_privatetest_accuracy"] > 0.5


def test_add_use_and_remove_a_user_model(capsys, home, tiny_checkpoint):
    status, out, _ = _run(capsys, "add", "my-model", tiny_checkpoint)
    assert status == 0 and str(home / "models" / "my-model") in out
    assert list_user_models() == ["my-model"]
    status, out, _ = _run(capsys, "list", "--format", "quiet")
    assert out.splitlines()[-1] == "my-model"
    _, out, _ = _run(capsys, "list")
    assert "my-model" in out.split("Your models")[1] and "resnet10t" not in out  # summary only

    # Usable by name everywhere a checkpoint is taken, with the same weights.
    by_name = ferkit.load_checkpoint("my-model")
    direct = ferkit.load_checkpoint(tiny_checkpoint)
    for key, value in direct.state_dict().items():
        assert np.array_equal(value.numpy(), by_name.state_dict()[key].numpy()), key

    status, out, _ = _run(capsys, "info", "my-model", "--format", "json")
    info = json.loads(out)
    assert info["architecture"] == "baseline" and info["path"] == str(home / "models" /
                                                                     "my-model")

    # A second add under the same name needs --overwrite; nothing is touched without it.
    status, _, err = _run(capsys, "add", "my-model", tiny_checkpoint)
    assert status == 2 and "already exists" in err and "--overwrite" in err
    assert _run(capsys, "add", "my-model", tiny_checkpoint, "--overwrite")[0] == 0
    assert sorted(p.name for p in (home / "models").iterdir()) == ["my-model"]  # no leftovers

    # A user model whose config.json broke is listed as such, not fatal to the listing.
    (home / "models" / "my-model" / "config.json").write_text("{not json")
    status, out, _ = _run(capsys, "list")
    assert status == 0 and "my-model" in out and "unreadable: cannot read" in out
    assert f"{DEFAULT_NAME} (default)" in out

    status, out, _ = _run(capsys, "remove", "my-model")
    assert status == 0 and list_user_models() == []
    status, _, err = _run(capsys, "remove", "my-model")
    assert status == 2 and "no user model called 'my-model'" in err


def test_bad_adds_are_refused_with_reasons(capsys, home, tiny_checkpoint, tmp_path):
    status, _, err = _run(capsys, "add", "Bad Name!", tiny_checkpoint)
    assert status == 2 and "is not allowed" in err
    status, _, err = _run(capsys, "add", "default", tiny_checkpoint)
    assert status == 2 and "shipped model" in err
    status, _, err = _run(capsys, "add", "ok", tmp_path / "missing")
    assert status == 2 and "not found" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "model.safetensors").write_bytes(b"junk")
    status, _, err = _run(capsys, "add", "ok", broken)
    assert status == 2 and "Traceback" not in err
    assert not user_models_dir().exists() or list_user_models() == []
    status, _, err = _run(capsys, "remove", DEFAULT_NAME)
    assert status == 2 and "only user models can be removed" in err


def test_info_prints_the_model_card(capsys):
    status, out, _ = _run(capsys, "info")
    assert status == 0
    assert "classes       neutral, happy, sad, surprise, fear, disgust, anger" in out
    assert "alignment box (face margin 0.0)" in out
    assert "data_licence: " in out and "research" in out
    assert "fer2013_privatetest_dedup_accuracy" in out


def test_user_model_predicts_by_name(capsys, home, tiny_checkpoint, tmp_path):
    _run(capsys, "add", "mine", tiny_checkpoint)
    photo = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    assert main(["predict", str(photo), "--model", "mine", "--no-detect",
                 "--format", "json"]) == 0
    faces = json.loads(capsys.readouterr().out)[0]["faces"]
    assert len(faces) == 1 and abs(sum(faces[0]["probs"].values()) - 1) < 1e-4


def test_architecture_name_as_model_says_it_has_no_weights(capsys, tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    assert main(["predict", str(photo), "--model", "dan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" not in err
    assert "'dan' is an architecture, not trained weights" in err
    assert "ferkit train --recipe dan_" in err and "ferkit models add NAME RUN/best" in err
    assert main(["models", "info", "dan"]) == 2
    assert "'dan' is an architecture" in capsys.readouterr().err
    assert main(["predict", str(photo), "--model", "no-such-model"]) == 2
    assert "checkpoint 'no-such-model' not found" in capsys.readouterr().err


def test_list_and_info_show_what_shipped_weights_are(capsys, home):
    from ferkit.weights import read_weights_config, shipped_weights_dir

    card = read_weights_config(shipped_weights_dir(DEFAULT_NAME))
    _, out, _ = _run(capsys, "list")
    shipped = out.split("Shipped weights")[1].split("Your models")[0]
    assert f"licence: {card.licence}" in shipped
    _, out, _ = _run(capsys, "list", "--format", "json")
    row = {r["name"]: r for r in json.loads(out)}[DEFAULT_NAME]
    assert (row["licence"], row["recipe"], row["sha256"]) == (card.licence, card.recipe,
                                                               card.sha256)
    status, out, _ = _run(capsys, "info", "dsan.fer2013")
    assert status == 0 and out.startswith("dsan.fer2013  (")
    assert f"licence       {card.licence}" in out and f"sha256        {card.sha256}" in out
    assert "recipe        fer2013_dsan (ferkit train -r fer2013_dsan)" in out
    _, out, _ = _run(capsys, "info", "default", "--format", "json")
    assert json.loads(out)["weights"]["name"] == "dsan.fer2013"


def test_shipped_names_and_old_names_cannot_be_taken(capsys, home, tiny_checkpoint):
    for name in ("dsan.fer2013", "fer2013_dsan", "default"):
        status, _, err = _run(capsys, "add", name, tiny_checkpoint)
        assert status == 2 and "is the name of a shipped model" in err, name
