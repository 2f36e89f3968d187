"""`giftcard integration add|remove|list`: one app client, and so one identity, per integrating system.

An integration's token is a client-credentials token of its own app client, so its subject (the client id) is its
alone, and its memberships name the one client it provisions for: a grant for client A is of no use to B's system.

- Locally (`giftcard integration add NAME`) the client `NAME` joins the local authorizer's audience
  (`app_clients`), and `giftcard token NAME --client` signs its tokens.
- In AWS (`--stack STACK`) a Cognito app client is made in the stack's user pool (client credentials, scope
  `giftcards/provision`, its own secret), and the stack is updated with its id added to the `IntegrationClientIds`
  parameter (the JWT authorizer's audience): nothing else changes. `remove` takes the id out of the audience first,
  then deletes the client.
Either way the integration may do nothing until it is granted a membership: `client_integration` on its client.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from giftcard_local import app_clients, cli

PARAMETER = 'IntegrationClientIds'
CLIENT_PREFIX = 'integration-'
_NAME = re.compile(r'[a-z0-9][a-z0-9-]{0,47}')


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise argparse.ArgumentTypeError('a name of lower-case letters, digits and dashes (at most 48)')
    return value


# --- AWS -------------------------------------------------------------------------------------------------


def _stack(cloudformation: Any, stack: str) -> dict[str, Any]:
    described: dict[str, Any] = cloudformation.describe_stacks(StackName=stack)['Stacks'][0]
    return described


def _client_ids(described: dict[str, Any]) -> list[str]:
    values = {p['ParameterKey']: p.get('ParameterValue', '') for p in described.get('Parameters', [])}
    if PARAMETER not in values:
        raise SystemExit(f'stack {described["StackName"]} has no {PARAMETER} parameter: deploy this template first')
    return [client for client in values[PARAMETER].split(',') if client]


def _user_pool(described: dict[str, Any]) -> str:
    outputs = {o['OutputKey']: o['OutputValue'] for o in described.get('Outputs', [])}
    return outputs['UserPoolId']


def _set_client_ids(cloudformation: Any, described: dict[str, Any], client_ids: list[str]) -> None:
    """Update the stack with its template and every other parameter as they are, and these client ids."""
    parameters: list[dict[str, Any]] = [
        {'ParameterKey': p['ParameterKey'], 'UsePreviousValue': True}
        for p in described['Parameters']
        if p['ParameterKey'] != PARAMETER
    ]
    parameters.append({'ParameterKey': PARAMETER, 'ParameterValue': ','.join(client_ids)})
    cloudformation.update_stack(
        StackName=described['StackName'],
        UsePreviousTemplate=True,
        Parameters=parameters,
        Capabilities=described.get('Capabilities', []),
    )
    cloudformation.get_waiter('stack_update_complete').wait(StackName=described['StackName'])


def _clients_named(cognito: Any, pool: str, client_name: str) -> list[str]:
    found, token = [], None
    while True:
        page = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=60, **({'NextToken': token} if token else {}))
        found += [c['ClientId'] for c in page['UserPoolClients'] if c['ClientName'] == client_name]
        token = page.get('NextToken')
        if not token:
            return found


def add_to_stack(name: str, stack: str, *, cloudformation: Any, cognito: Any) -> tuple[str, str]:
    """Make the integration's app client and add it to the stack's audience; answers (user pool id, client id)."""
    described = _stack(cloudformation, stack)
    current, pool = _client_ids(described), _user_pool(described)
    if _clients_named(cognito, pool, CLIENT_PREFIX + name):
        raise SystemExit(f'the user pool already has an app client {CLIENT_PREFIX}{name}')
    created = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName=CLIENT_PREFIX + name,
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=['client_credentials'],
        AllowedOAuthScopes=[app_clients.PROVISION_SCOPE],
        SupportedIdentityProviders=['COGNITO'],
        ExplicitAuthFlows=['ALLOW_REFRESH_TOKEN_AUTH'],  # no sign-in of people through an integration's client
        AccessTokenValidity=60,
        TokenValidityUnits={'AccessToken': 'minutes'},
        EnableTokenRevocation=True,
        PreventUserExistenceErrors='ENABLED',
    )
    client_id: str = created['UserPoolClient']['ClientId']
    try:
        _set_client_ids(cloudformation, described, [*current, client_id])
    except BaseException:
        cognito.delete_user_pool_client(UserPoolId=pool, ClientId=client_id)  # never a client outside the audience
        raise
    return pool, client_id


def remove_from_stack(client_id: str, stack: str, *, cloudformation: Any, cognito: Any) -> None:
    """Take the client out of the stack's audience (its tokens are refused from then on), then delete it."""
    described = _stack(cloudformation, stack)
    current = _client_ids(described)
    if client_id not in current:
        raise SystemExit(f'{client_id} is not in the stack parameter {PARAMETER}')
    _set_client_ids(cloudformation, described, [c for c in current if c != client_id])
    cognito.delete_user_pool_client(UserPoolId=_user_pool(described), ClientId=client_id)


def _aws(region: str | None) -> tuple[Any, Any]:
    import boto3

    return boto3.client('cloudformation', region_name=region), boto3.client('cognito-idp', region_name=region)


# --- the command -----------------------------------------------------------------------------------------


def register(sub: cli.Commands) -> None:
    command = sub.add_parser('integration', help='one app client per integrating system: add, remove, list')
    actions = command.add_subparsers(dest='action', required=True)
    add = actions.add_parser('add', help='a new integration: its own app client in the audience')
    add.add_argument('name', type=_name, help='the integrating system, e.g. acme-crm')
    remove = actions.add_parser('remove', help='take an integration out of the audience and delete its client')
    remove.add_argument('client_id', help='locally the name; in AWS the app client id')
    actions.add_parser('list', help='the integrations the authorizer accepts')
    for parser in (add, remove, actions.choices['list']):
        parser.add_argument('--stack', help='the deployed stack (AWS); without it, the local server')
        parser.add_argument('--region', help='the stack region (default: the AWS configuration)')


@cli.command('integration')
def cmd_integration(args: argparse.Namespace) -> int:
    if args.stack:
        return _in_aws(args)
    if args.action == 'add':
        app_clients.add(args.name)
        print(f'app client {args.name} may now get tokens: giftcard token {args.name} --client')
        print(f'it provisions nothing until granted: giftcard grant {args.name} client_integration --client CLIENT_ID')
    elif args.action == 'remove':
        if not app_clients.remove(args.client_id):
            print(f'{args.client_id} is not a registered app client', file=sys.stderr)
            return 1
    else:
        for client_id, scopes in sorted(app_clients.registered().items()):
            print(client_id, ' '.join(scopes))
    return 0


def _in_aws(args: argparse.Namespace) -> int:
    cloudformation, cognito = _aws(args.region)
    if args.action == 'add':
        pool, client_id = add_to_stack(args.name, args.stack, cloudformation=cloudformation, cognito=cognito)
        print(f'app client {CLIENT_PREFIX}{args.name}: {client_id} (in the audience of stack {args.stack})')
        print(
            f'its secret: aws cognito-idp describe-user-pool-client --user-pool-id {pool} --client-id {client_id}'
            ' --query UserPoolClient.ClientSecret --output text'
        )
        print(
            f'it provisions nothing until granted a membership: subject {client_id}, role client_integration, '
            'client_id its client (giftcards.memberships.grant, as the owner)'
        )
    elif args.action == 'remove':
        remove_from_stack(args.client_id, args.stack, cloudformation=cloudformation, cognito=cognito)
        print(f'{args.client_id} removed from stack {args.stack} and deleted')
    else:
        for client_id in _client_ids(_stack(cloudformation, args.stack)):
            print(client_id)
    return 0


cli.EXTENSIONS.append(register)
