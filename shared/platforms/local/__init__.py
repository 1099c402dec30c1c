"""The local adapter of the platform port: the embedded engine (engine/) on this machine.

platform.py is the facade (LocalPlatform); jobs.py and endpoints.py do the work; job_files.py,
endpoint_files.py, mlflow_store.py and base_model_names.py are what the adapter and the engine's processes
share (files, the registry, base model names); server_process.py and engine_env.py start those processes.
Nothing here imports the engine or torch.
"""

from shared.platforms.local.platform import LocalPlatform

__all__ = ["LocalPlatform"]
