"""A family's parameter map checked against its built model in a process of its own, before horovodrun
starts any rank: ``python -m launch.preflight FRAMEWORK FAMILY MODEL_CONFIG_JSON`` exits 1 with the
refusal as its last stderr line (the process loads the framework; the launcher need not)."""

from __future__ import annotations

import json
import sys

from harness.contract.family import load_family
from harness.contract.frameworks import framework_module


def main(argv: list[str]) -> int:
    framework, spec, model_json = argv
    family = load_family(spec)
    family.enter_environment()  # before the framework loads
    try:
        config = family.config_from_dict(json.loads(model_json))
        framework_module(framework, "backend").check_parameter_map(family, config)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
