"""`giftcard console-publish`: the console's files and a config.json for the stack go to its bucket (moto's S3),
with their types; what the site no longer has goes; the distribution is asked to fetch everything again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from giftcard_local import console_publish
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / 'web' / 'console'
BUCKET = 'console-files'
OUTPUTS = {
    'ApiUrl': 'https://abc123.execute-api.us-east-1.amazonaws.com/',
    'ConsoleUrl': 'https://d111111abcdef8.cloudfront.net/',
    'ConsoleBucketName': BUCKET,
    'ConsoleClientId': 'console-client-id',
    'SignInUrl': 'https://giftcards-dev-123456789012.auth.us-east-1.amazoncognito.com',
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'testing')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'testing')
    with mock_aws():
        s3 = boto3.client('s3', region_name='us-east-1')
        s3.create_bucket(Bucket=BUCKET)
        cloudfront = boto3.client('cloudfront', region_name='us-east-1')
        distribution = cloudfront.create_distribution(DistributionConfig=_distribution_config())['Distribution']
        yield {'s3': s3, 'cloudfront': cloudfront, 'outputs': {**OUTPUTS, 'ConsoleDistributionId': distribution['Id']}}


def test_every_console_file_and_the_stacks_config_are_uploaded_with_their_types(aws: dict[str, Any]) -> None:
    s3 = aws['s3']
    s3.put_object(Bucket=BUCKET, Key='js/removed-page.js', Body=b'old')

    written = console_publish.publish(SITE, aws['outputs'], s3, aws['cloudfront'])

    keys = {item['Key'] for item in s3.list_objects_v2(Bucket=BUCKET)['Contents']}
    assert keys == set(written) and {'index.html', 'console.css', 'js/main.js', 'config.json'} <= keys
    assert 'js/removed-page.js' not in keys
    page = s3.get_object(Bucket=BUCKET, Key='index.html')
    assert (page['ContentType'], page['CacheControl']) == ('text/html; charset=utf-8', 'no-cache')
    assert page['Body'].read() == (SITE / 'index.html').read_bytes()
    assert s3.get_object(Bucket=BUCKET, Key='js/main.js')['ContentType'] == 'text/javascript; charset=utf-8'
    config = json.loads(s3.get_object(Bucket=BUCKET, Key='config.json')['Body'].read())
    assert config == {
        'auth': 'cognito',
        'api': 'https://abc123.execute-api.us-east-1.amazonaws.com',
        'cognito': {
            'domain': OUTPUTS['SignInUrl'],
            'client_id': 'console-client-id',
            'redirect_uri': OUTPUTS['ConsoleUrl'],
            'logout_uri': OUTPUTS['ConsoleUrl'],
            'scope': 'openid email',
        },
    }
    invalidations = aws['cloudfront'].list_invalidations(DistributionId=aws['outputs']['ConsoleDistributionId'])
    assert invalidations['InvalidationList']['Quantity'] == 1


def test_a_stack_without_the_console_outputs_is_refused_before_anything_is_written(aws: dict[str, Any]) -> None:
    outputs = {k: v for k, v in aws['outputs'].items() if k != 'ConsoleClientId'}

    with pytest.raises(console_publish.PublishError, match='ConsoleClientId'):
        console_publish.publish(SITE, outputs, aws['s3'], aws['cloudfront'])

    assert 'Contents' not in aws['s3'].list_objects_v2(Bucket=BUCKET)


def test_the_local_config_is_not_published_as_a_site_file() -> None:
    keys = [f.key for f in console_publish.site_files(SITE)]

    assert 'config.json' not in keys and 'index.html' in keys
    assert json.loads((SITE / 'config.json').read_text()) == {'auth': 'local', 'api': ''}


def _distribution_config() -> dict[str, Any]:
    return {
        'CallerReference': 'console-test',
        'Comment': 'console',
        'Enabled': True,
        'Origins': {
            'Quantity': 1,
            'Items': [
                {
                    'Id': 'files',
                    'DomainName': f'{BUCKET}.s3.amazonaws.com',
                    'S3OriginConfig': {'OriginAccessIdentity': ''},
                }
            ],
        },
        'DefaultCacheBehavior': {'TargetOriginId': 'files', 'ViewerProtocolPolicy': 'redirect-to-https'},
    }
