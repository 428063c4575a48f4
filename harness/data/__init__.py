"""Data: inputs, tokenizers, prepared shards, token windows and the global batch order (numpy only)."""
