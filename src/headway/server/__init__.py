"""The HTTP server: a thin ASGI layer over `headway.gateway.Gateway`.

`app.App` routes, authenticates and maps errors; `routes` holds the router and the mount
contract other features use to add endpoints; `openai_routes` is the OpenAI-compatible API;
`run` serves the app with uvicorn; `cli` is `headway serve`. Importing this package is free:
the modules load when used.
"""
