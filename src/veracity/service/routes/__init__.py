"""API routers, included in one place by :func:`veracity.service.app.create_app`."""
