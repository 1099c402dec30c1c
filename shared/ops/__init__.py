"""The operations surface: run views as JSON, the server-rendered status page, and operator actions.

    overview(life)                  runs, live endpoints with idle times, recent alerts (JSON-ready)
    run_document(life, run)         one run with its lineage and job figures
    render_status_page(overview)    the self-contained HTML page
    redeploy(life, id) / retry(life, id)    raise RunNotFound (404) or ActionRefused (409)
"""

from shared.ops.actions import ActionRefused, RunNotFound, find_run, redeploy, retry
from shared.ops.page import PAGE_HEADERS, render_status_page
from shared.ops.views import overview, run_document, run_view

__all__ = ["PAGE_HEADERS", "ActionRefused", "RunNotFound", "find_run", "overview", "redeploy",
           "render_status_page", "retry", "run_document", "run_view"]
