"""A small web app that shows request cancellation at work.

Run it with ``python -m backburner.demo`` (or ``make demo``) and open the
address it prints. The page starts slow requests and aborts them with
the browser's ``AbortController``; the live log underneath shows what
the server did about it: a handler interrupted at its next ``await``, a
SQLite statement interrupted in its worker thread, a route that opted
out with :func:`~backburner.web.keep_running` finishing anyway.

The demo is a teaching aid, not an API: it will be replaced by the full
reference application (catalogue, identity, background jobs).

The app is built by :func:`backburner.demo.app.build_app`. Nothing is
imported here, so that ``python -m backburner.demo`` can say clearly
when FastAPI or uvicorn is missing.
"""
