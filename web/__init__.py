"""Dashboard templates and static files, shipped as package data of fednet."""
