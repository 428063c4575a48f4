"""A user's own launch script: the Python API under `horovodrun -np 2 python my_script.py RUN_DIR`."""

import json
import sys

from ngram_family import FAMILY

from harness import Hook, build_run_config, run


class CountSteps(Hook):
    def __init__(self):
        self.steps = 0

    def after_step(self, report, position):
        self.steps += 1


counter = CountSteps()
config = build_run_config(FAMILY, "tiny", overrides=["train.steps=6", "eval.every=3"])
summary = run("tf", FAMILY, config, sys.argv[1], progress=False, hooks=[counter])
print(json.dumps({"steps_seen_by_hook": counter.steps, "summary": summary and summary.final_val_metrics}))
