"""The least any HTTP function of this project imports, with none of its code: the libraries every handler needs, one
request model, and one resolver with request validation and one route, under Powertools' Logger and Metrics, as
`giftcards.api.app` builds them. `bench.imports` times it beside the handler modules: what a function takes over it
is this project's own share of the cold start."""

from typing import Any

import pg8000.native  # noqa: F401  (every function connects to the database)
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel, ConfigDict

logger = Logger(service='floor')
metrics = Metrics(namespace='Floor', service='floor')
app = APIGatewayHttpResolver(enable_validation=True)


class Thing(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str


@app.post('/things')
def add(thing: Thing) -> Thing:
    return thing


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
