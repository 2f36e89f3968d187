"""template.yaml declares the contract's routes, each once, on functions that exist, with logs and alarms."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from giftcard_local.template import Route, http_routes, load_template

ROOT = Path(__file__).resolve().parents[2]

# CONTRACT.md "Routes" and "Administration and dashboards": method, path, the function that serves it.
CONTRACT_ROUTES = {
    ('POST', '/provision-gift-card'): 'ProvisionFunction',
    ('POST', '/allocate-credit'): 'AllocateFunction',
    ('POST', '/reclaim-credit'): 'AllocateFunction',
    ('POST', '/monitor-gift-card-system'): 'MonitorFunction',
    ('GET', '/redeem'): 'RedeemFunction',
    ('POST', '/redeem'): 'RedeemFunction',
    ('GET', '/platform'): 'AdminFunction',
    ('POST', '/agencies'): 'AdminFunction',
    ('GET', '/agencies'): 'AdminFunction',
    ('GET', '/agencies/{agency_id}'): 'AdminFunction',
    ('POST', '/agencies/{agency_id}/clients'): 'AdminFunction',
    ('GET', '/agencies/{agency_id}/clients'): 'AdminFunction',
    ('GET', '/clients/{client_id}'): 'AdminFunction',
    ('POST', '/clients/{client_id}/campaigns'): 'AdminFunction',
    ('GET', '/clients/{client_id}/campaigns'): 'AdminFunction',
    ('GET', '/campaigns/{campaign_id}'): 'AdminFunction',
    ('PATCH', '/campaigns/{campaign_id}'): 'AdminFunction',
    ('POST', '/brands'): 'AdminFunction',
    ('GET', '/brands'): 'AdminFunction',
    ('GET', '/brands/{brand_id}'): 'AdminFunction',
    ('POST', '/pools'): 'AdminFunction',
    ('GET', '/pools'): 'AdminFunction',
    ('GET', '/pools/{pool_id}'): 'AdminFunction',
    ('POST', '/pools/{pool_id}/cards'): 'AdminFunction',
    ('POST', '/campaigns/{campaign_id}/codes'): 'AdminFunction',
    ('GET', '/campaigns/{campaign_id}/codes'): 'AdminFunction',
    ('POST', '/codes/{code_id}/void'): 'AdminFunction',
    ('GET', '/accounts/{account_id}'): 'AdminFunction',
    ('GET', '/accounts/{account_id}/transactions'): 'AdminFunction',
    ('GET', '/alerts'): 'AdminFunction',
    ('POST', '/alerts/{alert_id}/acknowledge'): 'AdminFunction',
    ('GET', '/dashboards/admin'): 'AdminFunction',
    ('GET', '/dashboards/agencies/{agency_id}'): 'AdminFunction',
    ('GET', '/dashboards/clients/{client_id}'): 'AdminFunction',
    ('GET', '/redemptions'): 'AdminFunction',
    ('GET', '/redemptions/{redemption_id}'): 'AdminFunction',
    ('POST', '/redemptions/{redemption_id}/resend'): 'AdminFunction',
    ('PUT', '/campaigns/{campaign_id}/delivery'): 'AdminFunction',
    ('PUT', '/brands/{brand_id}/message'): 'AdminFunction',
    ('POST', '/clients/{client_id}/sms-consents'): 'AdminFunction',
    ('GET', '/clients/{client_id}/sms-consents'): 'AdminFunction',
    ('GET', '/redemption-attempts'): 'AdminFunction',
    ('GET', '/openapi.json'): 'AdminFunction',
}
PUBLIC_ROUTES = {('GET', '/redeem'), ('POST', '/redeem'), ('GET', '/openapi.json')}


@pytest.fixture(scope='module')
def template() -> dict[str, Any]:
    return load_template(ROOT / 'template.yaml')


@pytest.fixture(scope='module')
def routes(template: dict[str, Any]) -> list[Route]:
    return http_routes(template)


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template['Resources'].items() if res['Type'] == kind}


def test_every_contract_route_is_declared_exactly_once_on_its_function(routes: list[Route]) -> None:
    declared = Counter((r.method, r.path) for r in routes)

    assert {key: n for key, n in declared.items() if n > 1} == {}
    assert set(declared) == set(CONTRACT_ROUTES)
    assert {(r.method, r.path): r.function_logical_id for r in routes} == CONTRACT_ROUTES


def test_only_the_redeem_page_and_the_openapi_description_are_public(routes: list[Route]) -> None:
    assert {(r.method, r.path) for r in routes if r.public} == PUBLIC_ROUTES


def test_the_api_requires_a_cognito_jwt_for_both_app_clients_by_default(template: dict[str, Any]) -> None:
    auth = template['Resources']['HttpApi']['Properties']['Auth']
    jwt = auth['Authorizers'][auth['DefaultAuthorizer']]['JwtConfiguration']

    assert jwt['issuer'] == {'Fn::Sub': 'https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}'}
    assert jwt['audience'] == [{'Ref': 'PeopleClient'}, {'Ref': 'IntegrationClient'}]


def test_no_catch_all_route(template: dict[str, Any], routes: list[Route]) -> None:
    assert not [r for r in routes if '{proxy+}' in r.path or r.method == 'ANY' or r.path == '$default']
    assert '{proxy+}' not in (ROOT / 'template.yaml').read_text()


def test_every_function_handler_module_exists_and_defines_lambda_handler(template: dict[str, Any]) -> None:
    functions = resources_of(template, 'AWS::Serverless::Function')
    assert set(functions) == {
        f'{name.title()}Function'
        for name in ('provision', 'allocate', 'monitor', 'redeem', 'admin', 'migrate', 'deliver')
    }
    for logical_id, function in functions.items():
        props = function['Properties']
        module, attribute = props['Handler'].rsplit('.', 1)
        path = ROOT / props['CodeUri'] / f'{module}.py'
        assert path.is_file(), f'{logical_id}: {path} is missing'
        tree = ast.parse(path.read_text(encoding='utf-8'))
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        names |= {
            t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
        }
        assert attribute == 'lambda_handler' and attribute in names, f'{logical_id}: {path} lacks {attribute}'
        assert module == f'{Path(props["CodeUri"]).name}_app', f'{logical_id}: handler modules are <name>_app'


def test_functions_run_python_3_12_on_arm64_traced_with_the_shared_layer(template: dict[str, Any]) -> None:
    defaults = template['Globals']['Function']
    assert defaults['Runtime'] == 'python3.12'
    assert defaults['Architectures'] == ['arm64']
    assert defaults['Tracing'] == 'Active'
    assert defaults['Layers'] == [{'Ref': 'SharedLayer'}]
    assert defaults['VpcConfig']['SubnetIds']
    env = defaults['Environment']['Variables']
    assert env['POWERTOOLS_SERVICE_NAME'] == 'giftcards'
    assert env['POWERTOOLS_METRICS_NAMESPACE'] == 'GiftCards'
    for function in resources_of(template, 'AWS::Serverless::Function').values():
        props = function['Properties']
        assert props.get('Runtime', 'python3.12') == 'python3.12'
        assert props.get('Architectures', ['arm64']) == ['arm64']
        assert 'POWERTOOLS_LOGGER_LOG_EVENT' not in (props.get('Environment') or {}).get('Variables', {})
    assert 'POWERTOOLS_LOGGER_LOG_EVENT' not in env

    layer = template['Resources']['SharedLayer']
    assert layer['Properties']['ContentUri'] == 'layers/shared/'
    assert layer['Properties']['CompatibleRuntimes'] == ['python3.12']
    assert layer['Properties']['CompatibleArchitectures'] == ['arm64']
    assert layer['Metadata']['BuildMethod'] == 'python3.12'


def test_every_function_logs_to_its_own_log_group_with_a_retention(template: dict[str, Any]) -> None:
    log_groups = resources_of(template, 'AWS::Logs::LogGroup')
    for logical_id, function in resources_of(template, 'AWS::Serverless::Function').items():
        props = function['Properties']
        group_id = props['LoggingConfig']['LogGroup']['Ref']
        group = log_groups[group_id]['Properties']
        assert group['RetentionInDays'], f'{logical_id}: its log group keeps logs forever'
        assert group['LogGroupName'] == {'Fn::Sub': '/aws/lambda/' + props['FunctionName']['Fn::Sub']}


def test_every_function_has_errors_and_throttles_alarms_to_the_alerts_topic(template: dict[str, Any]) -> None:
    alarms = resources_of(template, 'AWS::CloudWatch::Alarm').values()
    for logical_id in resources_of(template, 'AWS::Serverless::Function'):
        metrics = {
            a['Properties']['MetricName']
            for a in alarms
            if a['Properties']['Namespace'] == 'AWS/Lambda'
            and a['Properties']['Dimensions'] == [{'Name': 'FunctionName', 'Value': {'Ref': logical_id}}]
            and {'Ref': 'AlertsTopic'} in a['Properties']['AlarmActions']
        }
        assert metrics == {'Errors', 'Throttles'}, logical_id


def test_the_migrations_run_on_every_deploy_through_a_custom_resource(template: dict[str, Any]) -> None:
    (migration,) = resources_of(template, 'Custom::Migrate').values()
    props = migration['Properties']
    assert props['ServiceToken'] == {'Fn::GetAtt': ['MigrateFunction', 'Arn']}
    assert props['LayerVersion'] == {'Ref': 'SharedLayer'}
    assert props['DeployId'] == {'Ref': 'DeployId'}
    migrate_env = template['Resources']['MigrateFunction']['Properties']['Environment']['Variables']
    assert migrate_env['DB_OWNER_SECRET_ARN'] == {'Fn::GetAtt': ['Database', 'MasterUserSecret.SecretArn']}
    assert not template['Resources']['MigrateFunction']['Properties'].get('Events')


def test_the_alert_email_subscription_exists_only_when_an_address_is_given(template: dict[str, Any]) -> None:
    (subscription,) = resources_of(template, 'AWS::SNS::Subscription').values()
    assert subscription['Condition'] == 'HasAlertEmail'
    assert template['Conditions']['HasAlertEmail'] == {'Fn::Not': [{'Fn::Equals': [{'Ref': 'AlertEmail'}, '']}]}
    assert template['Parameters']['AlertEmail']['Default'] == ''


def test_the_loader_reads_short_intrinsic_tags(tmp_path: Path) -> None:
    path = tmp_path / 'template.yaml'
    path.write_text(
        'Resources:\n'
        '  Fn:\n'
        '    Type: AWS::Serverless::Function\n'
        '    Properties:\n'
        '      CodeUri: functions/x/\n'
        '      Handler: x_app.lambda_handler\n'
        '      Role: !GetAtt Role.Arn\n'
        '      Description: !Sub "${AWS::StackName}-x"\n'
        '      Timeout: !If [IsProd, 10, 20]\n'
        '      Events:\n'
        '        Any:\n'
        '          Type: HttpApi\n'
    )
    template = load_template(path)

    props = template['Resources']['Fn']['Properties']
    assert props['Role'] == {'Fn::GetAtt': ['Role', 'Arn']}
    assert props['Description'] == {'Fn::Sub': '${AWS::StackName}-x'}
    assert props['Timeout'] == {'Fn::If': ['IsProd', 10, 20]}
    assert http_routes(template) == [Route('ANY', '$default', 'Fn', 'functions/x/', 'x_app.lambda_handler', True)]


def test_deliveries_have_a_queue_with_a_dead_letter_queue_a_function_an_ses_identity_and_their_permissions(
    template: dict[str, Any],
) -> None:
    resources = template['Resources']
    queue = resources['DeliveryQueue']['Properties']
    assert queue['RedrivePolicy']['deadLetterTargetArn'] == {'Fn::GetAtt': ['DeliveryDeadLetterQueue', 'Arn']}
    deliver = resources['DeliverFunction']['Properties']
    assert queue['VisibilityTimeout'] >= 6 * deliver['Timeout']
    events = deliver['Events']
    assert events['Deliveries']['Properties']['Queue'] == {'Fn::GetAtt': ['DeliveryQueue', 'Arn']}
    assert events['Deliveries']['Properties']['FunctionResponseTypes'] == ['ReportBatchItemFailures']
    assert events['DeliveryEvents']['Properties']['Topic'] == {'Ref': 'DeliveryEventsTopic'}
    assert resources['SenderIdentity']['Properties']['EmailIdentity'] == {'Ref': 'SenderAddress'}
    destination = resources['DeliveryConfigurationSetEvents']['Properties']['EventDestination']
    assert destination['SnsDestination']['TopicARN'] == {'Ref': 'DeliveryEventsTopic'}
    assert set(destination['MatchingEventTypes']) == {'delivery', 'bounce', 'complaint'}
    statements = [s for p in deliver['Policies'] if 'Statement' in p for s in p['Statement']]
    assert {'ses:SendEmail', 'sns:Publish'} <= {s['Action'] for s in statements}
    assert template['Globals']['Function']['Environment']['Variables']['DELIVERY_QUEUE_URL'] == {'Ref': 'DeliveryQueue'}
    assert deliver['Environment']['Variables']['REDEEM_URL']['Fn::Sub'].endswith('/redeem')
    # Whatever commits a delivery, or resends one, may put it on the queue.
    send = {'SQSSendMessagePolicy': {'QueueName': {'Fn::GetAtt': ['DeliveryQueue', 'QueueName']}}}
    for name in ('ProvisionFunction', 'MonitorFunction', 'AdminFunction', 'DeliverFunction'):
        assert send in resources[name]['Properties']['Policies'], name
