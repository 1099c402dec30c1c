"""Base models for the engine: loading one by name (loading.py), preparing the default SmolLM2 from its
wheel (smollm2.py), and building the tiny random model plumbing tests use (tiny.py)."""
