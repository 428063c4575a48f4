"""The built-in model families, one folder each; ``harness.contract.family.BUILTIN_FAMILIES`` names them."""
