"""URL routes of the coordinator."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from fednet.server import (
    api,
    audit_api,
    bundle_api,
    imports,
    sites_api,
    stats_api,
    views,
)
from fednet.server.dashboard import dashboard_ws
from fednet.server.openapi import OPENAPI_PATH, openapi_document
from fednet.server.ws import client_ws


def setup_routes(app: web.Application, static_dir: Path) -> None:
    """Register every route of the coordinator on ``app``."""
    app.router.add_get("/", views.index, name="index")
    app.router.add_get("/runs/{run_id}", views.run_page, name="run")
    app.router.add_get("/runs/{run_id}/rounds", views.rounds_rows)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get(OPENAPI_PATH, openapi_document)
    app.router.add_get("/api/status", api.status)
    app.router.add_get("/api/clients", api.list_clients)
    app.router.add_get("/api/runs", api.list_runs)
    app.router.add_post("/api/runs", api.launch_run)
    app.router.add_get("/api/runs/{run_id}", api.get_run)
    app.router.add_post("/api/runs/{run_id}/stop", api.stop_run)
    app.router.add_get("/api/runs/{run_id}/model", api.download_model)
    app.router.add_get("/api/runs/{run_id}/bundle", bundle_api.download_bundle)
    app.router.add_post("/api/bundles", imports.import_bundle)
    app.router.add_get("/api/sites", sites_api.list_sites)
    app.router.add_post("/api/sites", sites_api.add_site)
    app.router.add_post("/api/sites/{name}/revoke", sites_api.revoke_site)
    app.router.add_get("/api/audit", audit_api.list_audit)
    app.router.add_get("/audit", audit_api.audit_page, name="audit")
    app.router.add_post("/api/stats", stats_api.post_stats)
    app.router.add_get("/stats", stats_api.stats_page, name="stats")
    app.router.add_get("/ws", client_ws)
    app.router.add_get("/ws/dashboard", dashboard_ws)
    app.router.add_static("/static", static_dir, name="static")
