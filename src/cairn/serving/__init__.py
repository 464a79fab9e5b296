"""`cairn serve`: a model (a package or a model URI) behind MLflow's scoring protocol.

    protocol.py  request bodies (JSON in MLflow's four formats, CSV) → model inputs, and
                 predictions → the answer's JSON; the errors a bad request gets
    batching.py  concurrent requests coalesced into one predict call, results split back
    app.py       the FastAPI application: /invocations, /predict, /health, /ping,
                 /metadata, /version

docs/serving.md describes the protocol, the limits and the errors.
"""
