"""Serving: one process per deployment (`python -m engine.serve.model_server`), or one shared process per
base model serving every LoRA adapter of it (`engine.serve.shared_server`), behind each endpoint's router
(`engine.serve.router`); the answers speak Azure ML's scoring shape (score_api.py) and OpenAI's chat
completions (openai_api.py). The adapter starts them (shared/platforms/local/server_process.py) and reads
what they report from the endpoint's files (shared/platforms/local/endpoint_files.py)."""
