"""The web UI served by ``veracity serve``: server-rendered pages over the service.

``routes.build_router`` gives the FastAPI router; ``view`` turns reports into what the templates
draw; ``backend`` is the narrow protocol the pages use to reach the service. Nothing here loads
models or decides a verdict.
"""
