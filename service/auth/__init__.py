"""Access control: scoped API keys (:mod:`.keys`), the in-memory key ring every worker
checks requests against (:mod:`.keyring`), the route -> scope table (:mod:`.scopes`) and the
ASGI guard that enforces it on every endpoint (:mod:`.guard`)."""
