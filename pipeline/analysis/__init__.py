"""Analysis helpers that need no provider: prompts and chunking for LLMs, local extractive methods."""
