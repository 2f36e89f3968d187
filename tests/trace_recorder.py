"""Invoke handlers as Lambda does with active tracing, under a tracer provider that records everything it is given.

Run in a fresh interpreter (`python -m tests.trace_recorder CALLS RESULT`): whether a handler is traced is decided
when its module is imported, so the provider must be in place before any handler module is. CALLS is a JSON file of
`[function, event]` pairs; RESULT receives `{"answers": [...], "recorded": [...]}`: each handler's answer, and every
subsegment, annotation, metadata entry and exception the tracer handed to the provider, in order. The handlers' logs
go to standard output as usual.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Generator, Sequence
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class RecordingSegment(BaseSegment):
    def __init__(self, name: str | None, recorded: list[dict[str, Any]]) -> None:
        self.name = name
        self.recorded = recorded

    def _record(self, kind: str, **fields: Any) -> None:
        self.recorded.append({'segment': self.name, 'kind': kind, **fields})

    def close(self, end_time: int | None = None) -> None:
        self._record('close')

    def add_subsegment(self, subsegment: Any) -> None:
        self._record('add_subsegment', value=subsegment)

    def remove_subsegment(self, subsegment: Any) -> None:
        self._record('remove_subsegment', value=subsegment)

    def put_annotation(self, key: str, value: Any) -> None:
        self._record('annotation', key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str = 'default') -> None:
        self._record('metadata', key=key, value=value, namespace=namespace)

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        self._record('exception', value=exception, stack=stack)


class RecordingProvider(BaseProvider):
    """A tracer provider that keeps everything; patching libraries is recorded and otherwise does nothing."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        self.recorded.append({'segment': name, 'kind': 'open', 'value': kwargs})
        yield RecordingSegment(name, self.recorded)

    @contextlib.asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
        self.recorded.append({'segment': name, 'kind': 'open', 'value': kwargs})
        yield RecordingSegment(name, self.recorded)

    def put_annotation(self, key: str, value: Any) -> None:
        self.recorded.append({'segment': None, 'kind': 'annotation', 'key': key, 'value': value})

    def put_metadata(self, key: str, value: Any, namespace: str = 'default') -> None:
        self.recorded.append({'segment': None, 'kind': 'metadata', 'key': key, 'value': value, 'namespace': namespace})

    def patch(self, modules: Sequence[str]) -> None:
        self.recorded.append({'segment': None, 'kind': 'patch', 'value': list(modules)})

    def patch_all(self) -> None:
        self.recorded.append({'segment': None, 'kind': 'patch_all'})


def main(calls_path: str, result_path: str) -> None:
    provider = RecordingProvider()
    Tracer(service='giftcards', provider=provider)  # the Tracer shares its configuration: every later one uses it

    from tests.events import LambdaContext

    with open(calls_path, encoding='utf-8') as fh:
        calls = json.load(fh)
    answers = []
    for function, event in calls:
        module = __import__(f'{function}_app')
        answers.append(module.lambda_handler(event, LambdaContext()))
    with open(result_path, 'w', encoding='utf-8') as fh:
        json.dump({'answers': answers, 'recorded': provider.recorded}, fh, default=repr)


if __name__ == '__main__':
    main(*sys.argv[1:])
