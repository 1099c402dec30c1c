"""The embedded engine: the local platform's machinery, which really fine-tunes and serves on this machine.

It runs as processes of its own, each started by the local adapter (shared/platforms/local/) by module name:

    python -m engine.train <job dir>            one fine-tune job (train/): TRL + PEFT LoRA, MLflow run,
                                                evaluation report, model logged for the registry
    python -m engine.serve.model_server …       one deployment's model server (serve/)
    python -m engine.serve.shared_server …      one server per base model, every LoRA adapter of it
    python -m engine.serve.router …             an endpoint's front: splits traffic between deployments

and models/ loads base models (preparing the default SmolLM2 from its wheel, or the tiny random one).

Layering: the engine may import shared/ (evaluation, settings, the port's types, storage, projects, and the
local adapter's file contracts: job_files, endpoint_files, mlflow_store, base_model_names). shared/ never
imports the engine: the adapter talks to it through a job's folder, an endpoint's files and HTTP. So the
function app (function_app.py, functions/, shared/) never imports torch, transformers, TRL, PEFT, datasets
or accelerate; tests/unit/test_layers.py and tests/unit/test_requirements.py check both. The engine's
packages come from requirements-local.txt and it is not deployed to Azure (.funcignore).
"""
