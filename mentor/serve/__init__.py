"""Layer 8: put a model to work. `mentor serve` (a web page and an HTTP API with request
batching, `mentor.serve.app`) and `mentor clean` (the data cleaner, `mentor.serve.clean`).

FastAPI and uvicorn (the `serve` extra) are imported only by the app modules.
"""
