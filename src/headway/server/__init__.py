"""The HTTP server: a thin layer over `headway.gateway.Gateway`.

`app.App` routes, authenticates and maps errors; `routes` holds the router and the mount
contract other features use to add endpoints; `openai_routes` is the OpenAI-compatible API;
`native` is headway's own HTTP/1.1 server (httptools), which `run` uses by default (uvicorn over
the app's ASGI interface with `--http uvicorn`); `cli` is `headway serve`. Importing this package is free:
the modules load when used.
"""
