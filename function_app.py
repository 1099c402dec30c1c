"""The Azure Functions app: registers one blueprint per trigger. Nothing else lives here."""

import azure.functions as func

from functions import front_door, idle_sweep, ingest, job_events, runs_api, steps

app = func.FunctionApp()
app.register_functions(ingest.bp)
app.register_functions(job_events.bp)
app.register_functions(steps.bp)
app.register_functions(idle_sweep.bp)
app.register_functions(runs_api.bp)
app.register_functions(front_door.bp)
