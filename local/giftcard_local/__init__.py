"""Developer-machine tooling: embedded PostgreSQL, the local API server, local JWTs, the `giftcard` CLI.

Nothing here is deployed; the Lambda functions use only the `giftcards` layer package.
"""
