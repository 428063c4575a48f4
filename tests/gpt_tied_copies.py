"""The built-in GPT family with its LM head tied in one framework only: the other framework's model
keeps ``lm_head.weight`` apart from ``wte.weight`` and declares it a tied copy (``ParameterMap.tied``),
so the two train as one tensor. One variant per framework holding the copy."""

import dataclasses

from harness.contract.mapping import IDENTITY, ParameterMap
from harness.families.gpt import FAMILY


def untied(framework):
    """The framework's GPT with an LM head of its own: ``lm_head.weight`` (vocab, embd), as ``wte``."""

    def build(config, compute_dtype=None):
        options = {} if compute_dtype is None else {"compute_dtype": compute_dtype}
        return FAMILY.implementation(framework)(dataclasses.replace(config, tie_embeddings=False), **options)

    return build


torch_untied, tf_untied = untied("torch"), untied("tf")
COPY = ParameterMap(tied={"lm_head.weight": ("wte.weight", IDENTITY)})
TORCH_COPY = dataclasses.replace(FAMILY, torch_model=f"{__name__}:torch_untied", parameter_maps={"torch": COPY})
TF_COPY = dataclasses.replace(FAMILY, tf_model=f"{__name__}:tf_untied", parameter_maps={"tf": COPY})
