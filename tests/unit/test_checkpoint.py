"""Checkpoints on disk: atomic, pruned, verified."""

import json

import numpy as np
import pytest
from checkpoints import CONFIG, save

from harness.families.gpt import FAMILY, init_state
from harness.storage.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, remove_partial_checkpoints


def test_saved_checkpoint_loads_back_bitwise(tmp_path):
    path = save(tmp_path, 5)
    assert path == tmp_path / "checkpoints" / "step_5"
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "optimizer.safetensors", "trainer.json"]
    loaded = load_checkpoint(path, FAMILY, CONFIG.model)
    assert loaded.step == 5 and loaded.trainer["framework"] == "torch"
    for name, value in init_state(CONFIG.model, 5).items():
        assert np.array_equal(loaded.model[name], value)
    assert loaded.optimizer["step"].tolist() == [5]
    # No temporary directory is left behind.
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_5"]


def test_only_the_newest_are_kept(tmp_path):
    for step in (10, 20, 30, 40):
        save(tmp_path, step, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert latest_checkpoint(tmp_path).step == 40


def test_truncated_or_modified_files_are_detected(tmp_path):
    path = save(tmp_path, 1)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.safetensors is missing, truncated or modified"):
        load_checkpoint(path)
    (path / "trainer.json").write_text("{")
    with pytest.raises(ValueError, match="incomplete or unreadable: trainer.json"):
        load_checkpoint(path)


def test_another_model_config_is_refused(tmp_path):
    path = save(tmp_path, 1)
    other = CONFIG.model.replace(n_layer=3, dropout=0.1)
    with pytest.raises(ValueError, match="different model config \\(differs in dropout, n_layer\\)"):
        load_checkpoint(path, FAMILY, other)
    assert json.loads((path / "trainer.json").read_text())["config"]["model"]["n_layer"] == 2


def test_no_checkpoint_to_resume(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint in "):
        latest_checkpoint(tmp_path)


def test_resume_skips_a_corrupt_newest_checkpoint_and_says_why(tmp_path):
    for step in (10, 20):
        save(tmp_path, step)
    (tmp_path / "checkpoints" / "step_20" / "model.safetensors").unlink()
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.step == 10
    assert len(checkpoint.skipped) == 1
    assert "step_20 is corrupt: model.safetensors is missing" in checkpoint.skipped[0]


def test_leftovers_of_a_killed_writer_are_never_listed_and_are_removed(tmp_path):
    save(tmp_path, 10)
    root = tmp_path / "checkpoints"
    (root / ".step_20.tmp-4242").mkdir()  # killed while writing step 20
    (root / ".step_20.tmp-4242" / "model.safetensors").write_bytes(b"half")
    (root / ".step_0.old-4242").mkdir()  # killed while deleting an old checkpoint
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10]
    assert latest_checkpoint(tmp_path).step == 10
    assert remove_partial_checkpoints(tmp_path) == [".step_0.old-4242", ".step_20.tmp-4242"]
    assert [p.name for p in root.iterdir()] == ["step_10"]


def test_foreign_files_in_a_run_directory_are_named_and_skipped(tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    with pytest.raises(ValueError, match="no checkpoint in "):
        latest_checkpoint(tmp_path)  # an empty checkpoints/ is no crash either
    save(tmp_path, 10)
    (root / "step_x").mkdir()  # a stray directory
    (root / "step_12").write_text("a file, not a directory")
    save(tmp_path, 20)
    (root / "step_20" / "trainer.json").write_text("not JSON")
    save(tmp_path, 30)
    (root / "step_30" / "trainer.json").write_text("[1, 2]")  # JSON, but not a checkpoint's
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.step == 10
    assert [reason.split(": ", 1)[0] for reason in checkpoint.skipped] == [
        f"{root / 'step_12'} is not a checkpoint (those are step_<N> directories)",
        f"{root / 'step_x'} is not a checkpoint (those are step_<N> directories)",
        f"checkpoint {root / 'step_30'} is incomplete or unreadable",
        f"checkpoint {root / 'step_20'} is incomplete or unreadable",
    ]
    assert [step for step, _ in list_checkpoints(tmp_path)] == [10, 20, 30]
