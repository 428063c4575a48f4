"""A torch rank never loads TensorFlow: not for the loop, not for rank 0's TensorBoard event files."""

import json
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SCRIPT = """
import json, sys
from harness import build_run_config, run
from harness.families.gpt import FAMILY

config = build_run_config(FAMILY, "tiny", overrides=["train.steps=3", "eval.every=0", "checkpoint.every=0"])
summary = run("torch", FAMILY, config, sys.argv[1], progress=False, tensorboard=True)
print(json.dumps({"tensorflow_loaded": "tensorflow" in sys.modules, "steps": summary.steps}))
"""


def test_a_torch_rank_writes_tensorboard_events_without_loading_tensorflow(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_dir)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"tensorflow_loaded": False, "steps": 3}
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == [1, 2, 3]
