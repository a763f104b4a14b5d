"""Running against the real API safely: the token, the checks before traffic, the cleanup.

Nothing here imports gevent or Locust: `edgebench run` applies these rules before it
starts any traffic process.
"""
