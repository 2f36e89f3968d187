"""template.yaml declares the contract's routes, each once, on functions that exist, with logs and alarms."""

from __future__ import annotations

import ast
import re
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
    ('GET', '/accounts/{account_id}'): 'DashboardsFunction',
    ('GET', '/accounts/{account_id}/transactions'): 'DashboardsFunction',
    ('GET', '/alerts'): 'DashboardsFunction',
    ('POST', '/alerts/{alert_id}/acknowledge'): 'DashboardsFunction',
    ('GET', '/dashboards/admin'): 'DashboardsFunction',
    ('GET', '/dashboards/agencies/{agency_id}'): 'DashboardsFunction',
    ('GET', '/dashboards/clients/{client_id}'): 'DashboardsFunction',
    ('GET', '/redemptions'): 'AdminFunction',
    ('GET', '/redemptions/{redemption_id}'): 'AdminFunction',
    ('POST', '/redemptions/{redemption_id}/resend'): 'AdminFunction',
    ('PUT', '/campaigns/{campaign_id}/delivery'): 'AdminFunction',
    ('PUT', '/brands/{brand_id}/message'): 'AdminFunction',
    ('POST', '/clients/{client_id}/sms-consents'): 'AdminFunction',
    ('GET', '/clients/{client_id}/sms-consents'): 'AdminFunction',
    ('GET', '/redemption-attempts'): 'AdminFunction',
    ('GET', '/openapi.json'): 'AdminFunction',
    ('GET', '/docs'): 'AdminFunction',
    ('GET', '/docs/{asset}'): 'AdminFunction',
    ('GET', '/me'): 'AdminFunction',
}
PUBLIC_ROUTES = {
    ('GET', '/redeem'),
    ('POST', '/redeem'),
    ('GET', '/openapi.json'),
    ('GET', '/docs'),
    ('GET', '/docs/{asset}'),
}


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


def test_only_the_redeem_page_and_the_openapi_description_and_its_page_are_public(routes: list[Route]) -> None:
    assert {(r.method, r.path) for r in routes if r.public} == PUBLIC_ROUTES


def test_the_api_requires_a_cognito_jwt_of_the_people_client_or_an_integrations_own(template: dict[str, Any]) -> None:
    auth = template['Resources']['HttpApi']['Properties']['Auth']
    jwt = auth['Authorizers'][auth['DefaultAuthorizer']]['JwtConfiguration']
    people = {'Ref': 'PeopleClient'}
    each_integration = {'Fn::Join': [',', {'Ref': 'IntegrationClientIds'}]}

    assert jwt['issuer'] == {'Fn::Sub': 'https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}'}
    console = {'Ref': 'ConsoleClient'}
    assert jwt['audience'] == {
        'Fn::If': [
            'HasIntegrations',
            {'Fn::Split': [',', {'Fn::Join': [',', [people, console, each_integration]]}]},
            [people, console],
        ]
    }
    assert template['Parameters']['IntegrationClientIds'] == {
        'Type': 'CommaDelimitedList',
        'Default': '',
        'Description': template['Parameters']['IntegrationClientIds']['Description'],
    }
    assert template['Conditions']['HasIntegrations'] == {
        'Fn::Not': [{'Fn::Equals': [{'Fn::Join': ['', {'Ref': 'IntegrationClientIds'}]}, '']}]
    }


def test_no_app_client_is_shared_by_integrations_and_people_never_send_passwords(template: dict[str, Any]) -> None:
    clients = resources_of(template, 'AWS::Cognito::UserPoolClient')

    assert sorted(clients) == ['ConsoleClient', 'PeopleClient']  # people, in the console: no secret, no password
    people = clients['PeopleClient']['Properties']
    assert 'AllowedOAuthFlows' not in people and people['GenerateSecret'] is False
    assert people['ExplicitAuthFlows'] == ['ALLOW_USER_SRP_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH']
    (server,) = resources_of(template, 'AWS::Cognito::UserPoolResourceServer').values()
    assert server['Properties']['Identifier'] == 'giftcards'
    assert [s['ScopeName'] for s in server['Properties']['Scopes']] == ['provision']


def test_only_the_provision_route_requires_a_scope_an_integration_or_a_person_carries(routes: list[Route]) -> None:
    scoped = {(r.method, r.path): r.scopes for r in routes if r.scopes}

    assert scoped == {('POST', '/provision-gift-card'): ('giftcards/provision', 'aws.cognito.signin.user.admin')}


def test_no_catch_all_route(template: dict[str, Any], routes: list[Route]) -> None:
    assert not [r for r in routes if '{proxy+}' in r.path or r.method == 'ANY' or r.path == '$default']
    assert '{proxy+}' not in (ROOT / 'template.yaml').read_text()


def test_every_function_handler_module_exists_and_defines_lambda_handler(template: dict[str, Any]) -> None:
    functions = resources_of(template, 'AWS::Serverless::Function')
    assert set(functions) == {
        f'{name.title()}Function'
        for name in ('provision', 'allocate', 'monitor', 'redeem', 'admin', 'dashboards', 'migrate', 'deliver')
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
    assert env['POWERTOOLS_TRACER_CAPTURE_RESPONSE'] == env['POWERTOOLS_TRACER_CAPTURE_ERROR'] == 'false'
    assert env['PYDANTIC_DISABLE_PLUGINS'] == '__all__'
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


def alarms_on(template: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        a['Properties']
        for a in resources_of(template, 'AWS::CloudWatch::Alarm').values()
        if (a['Properties']['Namespace'], a['Properties']['MetricName']) == (namespace, metric)
    ]


def test_every_alarm_tells_the_alerts_topic_when_it_fires_and_when_it_clears(template: dict[str, Any]) -> None:
    for name, alarm in resources_of(template, 'AWS::CloudWatch::Alarm').items():
        props = alarm['Properties']
        assert props['AlarmActions'] == props['OKActions'] == [{'Ref': 'AlertsTopic'}], name


def test_an_error_logged_by_any_function_fires_an_alarm(template: dict[str, Any]) -> None:
    """The handlers answer every exception themselves (a 500 the Lambda Errors metric never counts): their log
    lines at ERROR are what an alarm sees."""
    filters = resources_of(template, 'AWS::Logs::MetricFilter').values()
    counted = {
        f['Properties']['LogGroupName']['Ref']
        for f in filters
        if f['Properties']['FilterPattern'] == '{ $.level = "ERROR" || $.level = "CRITICAL" }'
        and f['Properties']['MetricTransformations']
        == [{'MetricNamespace': 'GiftCards/Logs', 'MetricName': 'ErrorLines', 'MetricValue': '1', 'Unit': 'Count'}]
    }
    groups = {
        fn['Properties']['LoggingConfig']['LogGroup']['Ref']
        for fn in resources_of(template, 'AWS::Serverless::Function').values()
    }
    (alarm,) = alarms_on(template, 'GiftCards/Logs', 'ErrorLines')

    assert counted == groups
    assert (alarm['Statistic'], alarm['Threshold'], alarm['ComparisonOperator']) == (
        'Sum',
        1,
        'GreaterThanOrEqualToThreshold',
    )


def test_the_api_has_alarms_on_server_errors_and_latency(template: dict[str, Any]) -> None:
    api = [{'Name': 'ApiId', 'Value': {'Ref': 'HttpApi'}}]

    assert [a['Dimensions'] for a in alarms_on(template, 'AWS/ApiGateway', '5xx')] == [api]
    assert [a['Dimensions'] for a in alarms_on(template, 'AWS/ApiGateway', 'Latency')] == [api]


def test_the_database_and_the_proxy_have_alarms_on_cpu_storage_and_connections(template: dict[str, Any]) -> None:
    database = [{'Name': 'DBInstanceIdentifier', 'Value': {'Ref': 'Database'}}]
    proxy = [{'Name': 'ProxyName', 'Value': {'Ref': 'DBProxy'}}]

    for metric in ('CPUUtilization', 'FreeStorageSpace', 'DatabaseConnections'):
        assert [a['Dimensions'] for a in alarms_on(template, 'AWS/RDS', metric)] == [database], metric
    for metric in ('ClientConnections', 'DatabaseConnectionsBorrowLatency', 'ClientConnectionsSetupFailedAuth'):
        assert [a['Dimensions'] for a in alarms_on(template, 'AWS/RDS', metric)] == [proxy], metric


def test_a_monitor_that_has_not_run_for_15_minutes_fires_an_alarm(template: dict[str, Any]) -> None:
    (alarm,) = alarms_on(template, 'GiftCards', 'MonitorRunDuration')

    assert alarm['Dimensions'] == [{'Name': 'service', 'Value': 'giftcards'}]
    assert (alarm['Statistic'], alarm['ComparisonOperator'], alarm['Threshold']) == (
        'SampleCount',
        'LessThanThreshold',
        1,
    )
    assert alarm['Period'] * alarm['EvaluationPeriods'] == 15 * 60
    assert alarm['TreatMissingData'] == 'breaching'  # no runs means no data points


def test_a_failed_scheduled_monitor_run_goes_to_the_alerts_topic(template: dict[str, Any]) -> None:
    config = template['Resources']['MonitorFunction']['Properties']['EventInvokeConfig']

    assert config['DestinationConfig']['OnFailure'] == {'Type': 'SNS', 'Destination': {'Ref': 'AlertsTopic'}}
    assert config['MaximumEventAgeInSeconds'] < 300  # never still retried when the next run is due


def test_the_public_redeem_routes_have_their_own_throttle_below_the_apis(template: dict[str, Any]) -> None:
    default = template['Resources']['HttpApi']['Properties']['DefaultRouteSettings']
    events = template['Resources']['RedeemFunction']['Properties']['Events'].values()
    settings = {e['Properties']['Method']: e['Properties']['RouteSettings'] for e in events}

    assert set(settings) == {'GET', 'POST'}
    for limits in settings.values():
        assert limits['ThrottlingRateLimit'] < default['ThrottlingRateLimit']
        assert limits['ThrottlingBurstLimit'] < default['ThrottlingBurstLimit']


def test_every_function_reserves_its_concurrency_within_the_proxys_database_connections(
    template: dict[str, Any],
) -> None:
    reserved = {
        name: fn['Properties']['ReservedConcurrentExecutions']
        for name, fn in resources_of(template, 'AWS::Serverless::Function').items()
    }
    pool = template['Resources']['DBProxyTargetGroup']['Properties']['ConnectionPoolConfigurationInfo']

    assert all(n >= 1 for n in reserved.values())
    assert template['Resources']['Database']['Properties']['DBInstanceClass'] == 'db.t4g.micro'
    # db.t4g.micro: max_connections = memory / 9.5 MB, about 90; the proxy takes its share of them.
    assert sum(reserved.values()) <= 90 * pool['MaxConnectionsPercent'] // 100


def test_every_log_group_is_encrypted_with_the_platform_key(template: dict[str, Any]) -> None:
    for name, group in resources_of(template, 'AWS::Logs::LogGroup').items():
        assert group['Properties']['KmsKeyId'] == {'Fn::GetAtt': ['DataKey', 'Arn']}, name


def test_people_need_an_authenticator_app_to_sign_in(template: dict[str, Any]) -> None:
    pool = template['Resources']['UserPool']['Properties']

    assert (pool['MfaConfiguration'], pool['EnabledMfas']) == ('ON', ['SOFTWARE_TOKEN_MFA'])
    assert pool['AdminCreateUserConfig']['AllowAdminCreateUserOnly'] is True


def test_production_keeps_a_standby_database_and_refuses_deletion(template: dict[str, Any]) -> None:
    database = template['Resources']['Database']['Properties']

    assert database['MultiAZ'] == {'Fn::If': ['IsProd', True, False]}
    assert database['DeletionProtection'] == {'Fn::If': ['IsProd', True, False]}
    assert template['Conditions']['IsProd'] == {'Fn::Equals': [{'Ref': 'EnvironmentName'}, 'prod']}


def test_card_data_has_its_own_key_usable_only_with_the_card_encryption_context(template: dict[str, Any]) -> None:
    key = template['Resources']['CardKey']
    statements = key['Properties']['KeyPolicy']['Statement']
    denials = [s for s in statements if s['Effect'] == 'Deny']

    assert key['DeletionPolicy'] == 'Retain' and key['Properties']['EnableKeyRotation'] is True
    assert denials == [
        {
            'Sid': 'NoUseWithoutTheCardEncryptionContext',
            'Effect': 'Deny',
            'Principal': {'AWS': '*'},
            'Action': ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
            'Resource': '*',
            'Condition': {'StringNotEquals': {'kms:EncryptionContext:purpose': 'giftcards-card-data'}},
        }
    ]
    assert [s['Principal'] for s in statements if s['Effect'] == 'Allow'] == [
        {'AWS': {'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root'}}
    ]


def test_services_may_use_the_platform_key_only_for_this_accounts_resources(template: dict[str, Any]) -> None:
    statements = template['Resources']['DataKey']['Properties']['KeyPolicy']['Statement']
    named = [(s['Principal']['Service'], s.get('Condition')) for s in statements if 'Service' in s['Principal']]
    services = {name if isinstance(name, str) else name['Fn::Sub']: condition for name, condition in named}

    assert services['cloudwatch.amazonaws.com']['StringEquals'] == {'aws:SourceAccount': {'Ref': 'AWS::AccountId'}}
    assert services['logs.${AWS::Region}.amazonaws.com'] == {
        'ArnLike': {
            'kms:EncryptionContext:aws:logs:arn': {
                'Fn::Sub': 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*'
            }
        }
    }
    # SES and End User Messaging publish delivery events and SMS replies to the encrypted delivery events topic.
    for service in ('ses.amazonaws.com', 'sms-voice.amazonaws.com'):
        assert services[service] == {'StringEquals': {'aws:SourceAccount': {'Ref': 'AWS::AccountId'}}}
    assert set(services) == {
        'cloudwatch.amazonaws.com',
        'logs.${AWS::Region}.amazonaws.com',
        'ses.amazonaws.com',
        'sms-voice.amazonaws.com',
    }


def test_a_stack_is_never_named_local_where_the_code_would_stand_in_for_keys(template: dict[str, Any]) -> None:
    pattern = re.compile(template['Parameters']['EnvironmentName']['AllowedPattern'])

    assert [name for name in ('local', 'dev', 'prod', 'staging-2', 'locals') if pattern.fullmatch(name)] == [
        'dev',
        'prod',
        'staging-2',
        'locals',
    ]


# --- the web console -------------------------------------------------------------------------------------

CONSOLE_ORIGIN = {'Fn::Sub': 'https://${ConsoleDistribution.DomainName}'}


def test_the_api_allows_exactly_the_consoles_origin(template: dict[str, Any]) -> None:
    cors = template['Resources']['HttpApi']['Properties']['CorsConfiguration']

    assert cors['AllowOrigins'] == [CONSOLE_ORIGIN]
    assert {'authorization', 'content-type', 'idempotency-key'} <= set(cors['AllowHeaders'])
    assert 'AllowCredentials' not in cors  # bearer tokens, never cookies


def test_the_console_signs_in_through_the_hosted_ui_with_the_code_flow_and_no_secret(template: dict[str, Any]) -> None:
    client = template['Resources']['ConsoleClient']['Properties']

    assert client['AllowedOAuthFlows'] == ['code'] and client['GenerateSecret'] is False
    assert client['CallbackURLs'] == [{'Fn::Sub': 'https://${ConsoleDistribution.DomainName}/'}]
    assert 'ALLOW_USER_PASSWORD_AUTH' not in client['ExplicitAuthFlows']


def test_the_console_files_are_private_and_read_only_by_its_distribution(template: dict[str, Any]) -> None:
    bucket = template['Resources']['ConsoleBucket']['Properties']
    assert all(bucket['PublicAccessBlockConfiguration'].values())
    [allow] = [
        s
        for s in template['Resources']['ConsoleBucketPolicy']['Properties']['PolicyDocument']['Statement']
        if s['Effect'] == 'Allow'
    ]
    assert allow['Principal'] == {'Service': 'cloudfront.amazonaws.com'} and allow['Action'] == 's3:GetObject'
    assert 'distribution/${ConsoleDistribution}' in allow['Condition']['StringEquals']['AWS:SourceArn']['Fn::Sub']
    config = template['Resources']['ConsoleDistribution']['Properties']['DistributionConfig']
    assert config['Origins'][0]['OriginAccessControlId'] == {'Fn::GetAtt': ['ConsoleOriginAccess', 'Id']}
    assert config['DefaultCacheBehavior']['ViewerProtocolPolicy'] == 'redirect-to-https'
    assert config['DefaultCacheBehavior']['AllowedMethods'] == ['GET', 'HEAD']


def test_deliveries_have_a_queue_with_a_dead_letter_queue_a_function_and_an_ses_identity(
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
    assert deliver['Environment']['Variables']['REDEEM_URL']['Fn::Sub'].endswith('/redeem')
    assert deliver['Environment']['Variables']['DELIVERY_TRANSPORT'] == 'aws'


def test_the_queue_never_throttles_the_deliver_function_and_its_failed_events_are_kept(
    template: dict[str, Any],
) -> None:
    """A throttled queue message counts as a receive, and five of them would send it to the dead-letter queue."""
    deliver = template['Resources']['DeliverFunction']['Properties']
    scaling = deliver['Events']['Deliveries']['Properties']['ScalingConfig']

    assert scaling['MaximumConcurrency'] < deliver['ReservedConcurrentExecutions']
    assert deliver['DeadLetterQueue'] == {
        'Type': 'SQS',
        'TargetArn': {'Fn::GetAtt': ['DeliveryDeadLetterQueue', 'Arn']},
    }
    (alarm,) = alarms_on(template, 'AWS/SQS', 'ApproximateNumberOfMessagesVisible')
    assert alarm['Dimensions'] == [
        {'Name': 'QueueName', 'Value': {'Fn::GetAtt': ['DeliveryDeadLetterQueue', 'QueueName']}}
    ]


def test_cards_are_emailed_only_from_the_sender_address_and_never_by_a_stack_without_one(
    template: dict[str, Any],
) -> None:
    pattern = re.compile(template['Parameters']['SenderAddress']['AllowedPattern'])

    assert 'Default' not in template['Parameters']['SenderAddress']
    assert [a for a in ('', 'cards@example.com', 'example.com', 'a b@example.com') if pattern.fullmatch(a)] == [
        'cards@example.com'
    ]
