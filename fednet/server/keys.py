"""Typed keys of the shared state stored on the aiohttp application."""

from __future__ import annotations

import weakref
from collections import Counter

from aiohttp import web

from fednet.settings import ServerSettings
from fednet.buffers import BufferPool
from fednet.server.audit import AuditLog
from fednet.server.events import EventHub
from fednet.server.registry import Registry
from fednet.server.runs import RunManager
from fednet.server.sites import SiteBook
from fednet.server.store import Store
from fednet.server.uploads import UploadGate

SETTINGS = web.AppKey("settings", ServerSettings)
STORE = web.AppKey("store", Store)
AUDIT = web.AppKey("audit", AuditLog)
SITES = web.AppKey("sites", SiteBook)
REGISTRY = web.AppKey("registry", Registry)
RUNS = web.AppKey("runs", RunManager)
EVENTS = web.AppKey("events", EventHub)
UPLOADS = web.AppKey("uploads", UploadGate)
BUFFERS = web.AppKey("buffers", BufferPool)
STATS = web.AppKey("stats", Counter[str])
STARTED = web.AppKey("started", float)
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
CLIENT_SOCKETS = web.AppKey("client_sockets", set[web.WebSocketResponse])
