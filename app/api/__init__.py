"""HTTP layer: routers, schemas, dependencies (auth, runtime) and the body size limit."""
