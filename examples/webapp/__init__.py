"""An example FastAPI app using the client (app.py); run it with ``scripts/webapp``."""
