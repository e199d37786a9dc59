"""Language models: one protocol; the built-in deterministic engine; OpenAI-compatible and Anthropic adapters."""
