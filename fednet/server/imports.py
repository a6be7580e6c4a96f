"""``POST /api/bundles``: an uploaded bundle stored as a run to warm-start from.

The bundle (``GET /api/runs/{id}/bundle`` of this or another coordinator)
becomes a finished run without rounds: its RunConfig, schema and, for CSV,
preprocessing are the bundle's, and its model is the checkpoint of the
bundle's round. A run launched with ``warm_start`` set to its id then starts
from that model under every check of :mod:`fednet.server.warmstart`. The body
is the zip itself (``application/zip``: a cross-site page cannot send it
without a CORS preflight), read as a stream up to :data:`MAX_UPLOAD_BYTES`,
and its members may inflate to :data:`MAX_IMPORT_MODEL_BYTES` and
:data:`MAX_IMPORT_META_BYTES` only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from fednet.bundle import Bundle, BundleError, read_bundle
from fednet.config import RunConfig
from fednet.exceptions import ConfigError
from fednet.learning.datasets import BUILTIN_DATASETS, load_builtin_test
from fednet.server import access
from fednet.server.api import json_response
from fednet.server.keys import AUDIT, STORE
from fednet.server.store import Store

logger = logging.getLogger(__name__)

ZIP = "application/zip"
MAX_UPLOAD_BYTES = 64 << 20
MAX_IMPORT_MODEL_BYTES = 256 << 20
MAX_IMPORT_META_BYTES = 16 << 20


def imported_run(bundle: Bundle) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Return the config, schema and round a bundle is stored with.

    Raises:
        BundleError: if its RunConfig is not valid on this coordinator, its
            round is not a positive integer, or a built-in data set's
            bundle names other features or classes than the data set's.
    """
    try:
        config = RunConfig.from_dict(bundle.meta.get("config"))
    except ConfigError as e:
        raise BundleError(f"the bundle's config is not valid here: {e}") from None
    server_round = bundle.meta.get("server_round")
    if type(server_round) is not int or not 1 <= server_round <= 10_000:
        raise BundleError(f"the bundle's server_round is not a round: {server_round!r}")
    schema = bundle.schema.to_dict()
    if config.task in BUILTIN_DATASETS:  # standardised by the data set's recipe
        if bundle.schema != load_builtin_test(config.task)[2]:
            raise BundleError(
                f"the bundle's features or classes are not those of {config.task}"
            )
    else:
        schema["preprocess"] = bundle.preprocess.to_dict()
    return config.to_dict(), schema, server_round


def _import(store: Store, raw: bytes) -> tuple[int, Bundle]:
    """Check the bundle and store it as a run (blocking: inflates, writes)."""
    bundle = read_bundle(raw, MAX_IMPORT_MODEL_BYTES, MAX_IMPORT_META_BYTES)
    config, schema, server_round = imported_run(bundle)
    run_id = store.import_run(
        config, schema, server_round, bundle.parameters, time.time()
    )
    return run_id, bundle


async def _read_upload(request: web.Request) -> bytes:
    """Read the body as a stream, refusing it (413) past MAX_UPLOAD_BYTES."""
    if (request.content_length or 0) > MAX_UPLOAD_BYTES:
        raise _too_large(request.content_length or 0)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int) -> web.HTTPRequestEntityTooLarge:
    body = json.dumps({"error": f"a bundle is at most {MAX_UPLOAD_BYTES} bytes"})
    return web.HTTPRequestEntityTooLarge(
        MAX_UPLOAD_BYTES, size, text=body, content_type="application/json"
    )


async def import_bundle(request: web.Request) -> web.Response:
    """Store an uploaded bundle as a run (admin): 201 with its id, or 400."""
    await access.require_admin(request, body_type=ZIP)
    raw = await _read_upload(request)
    try:
        run_id, bundle = await asyncio.to_thread(_import, request.app[STORE], raw)
    except BundleError as e:
        raise access.json_error(web.HTTPBadRequest, str(e)) from None
    origin = (
        f"run {bundle.meta.get('run_id')} round {bundle.meta.get('server_round')}"
        f" of fednet {bundle.meta.get('fednet_version')},"
        f" sha256 {str(bundle.meta.get('sha256'))[:12]}"
    )
    request.app[AUDIT].record(
        access.request_role(request),
        "run.import",
        target=str(run_id),
        remote=request.remote,
        detail=origin,
    )
    logger.info("run: %d imported from a bundle (%s)", run_id, origin)
    return json_response({"id": run_id}, status=201)
