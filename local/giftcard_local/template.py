"""Reading template.yaml: a YAML loader that understands CloudFormation's short tags, and the HTTP API routes.

The local server and the template tests read routes through `http_routes`, so both see exactly what the
deployed HTTP API would route: each event of type `HttpApi` on an `AWS::Serverless::Function`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus the short intrinsic tags (`!Ref X` -> `{'Ref': 'X'}`, `!Sub s` -> `{'Fn::Sub': s}`, ...)."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == 'Ref':
        return {'Ref': value}
    if tag_suffix == 'Condition':
        return {'Condition': value}
    if tag_suffix == 'GetAtt' and isinstance(value, str):
        resource, _, attribute = value.partition('.')
        return {'Fn::GetAtt': [resource, attribute]}
    return {f'Fn::{tag_suffix}': value}


CloudFormationLoader.add_multi_constructor('!', _intrinsic)


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in their long form."""
    with open(path, encoding='utf-8') as fh:
        template = yaml.load(fh, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict):
        raise ValueError(f'{path}: not a CloudFormation template')
    return template


@dataclass(frozen=True)
class Route:
    """One HTTP API route and the function behind it."""

    method: str  # upper case; ANY for a route without a method
    path: str  # as declared, e.g. /agencies/{agency_id}
    function_logical_id: str
    code_uri: str  # relative to the template's folder
    handler: str  # module.attribute, e.g. admin_app.lambda_handler
    public: bool  # no authorizer: `Auth: {Authorizer: NONE}`, or an API without a default authorizer
    scopes: tuple[str, ...] = ()  # `Auth: {AuthorizationScopes: [...]}`: the token must carry one of them


def _default_authorizer(template: dict[str, Any], api_id: Any) -> str | None:
    if isinstance(api_id, dict) and 'Ref' in api_id:
        api = (template.get('Resources') or {}).get(api_id['Ref']) or {}
        auth = (api.get('Properties') or {}).get('Auth') or {}
    else:  # the implicit API that SAM creates, configured by Globals.HttpApi
        auth = ((template.get('Globals') or {}).get('HttpApi') or {}).get('Auth') or {}
    return auth.get('DefaultAuthorizer')


def http_routes(template: dict[str, Any]) -> list[Route]:
    """Every `HttpApi` event of every serverless function, in template order."""
    defaults = (template.get('Globals') or {}).get('Function') or {}
    routes = []
    for logical_id, resource in (template.get('Resources') or {}).items():
        if not isinstance(resource, dict) or resource.get('Type') != 'AWS::Serverless::Function':
            continue
        props = resource.get('Properties') or {}
        code_uri = props.get('CodeUri', defaults.get('CodeUri'))
        handler = props.get('Handler', defaults.get('Handler'))
        for event in (props.get('Events') or {}).values():
            if event.get('Type') != 'HttpApi':
                continue
            if not isinstance(code_uri, str) or not isinstance(handler, str):
                raise ValueError(f'{logical_id}: CodeUri and Handler must be plain strings to serve it locally')
            event_props = event.get('Properties') or {}
            auth = event_props.get('Auth') or {}
            authorizer = auth.get('Authorizer')
            if authorizer is None:
                authorizer = _default_authorizer(template, event_props.get('ApiId'))
            routes.append(
                Route(
                    method=str(event_props.get('Method') or 'ANY').upper(),
                    path=str(event_props.get('Path') or '$default'),
                    function_logical_id=logical_id,
                    code_uri=code_uri,
                    handler=handler,
                    public=authorizer in (None, 'NONE'),
                    scopes=tuple(auth.get('AuthorizationScopes') or ()),
                )
            )
    return routes
