"""HTTP adapters: Powertools routers that parse, authorize through `giftcards.auth`, call one use case and
shape the answer. Handlers in `functions/*/` assemble them with `make_app`."""
