"""`giftcard console-publish --stack NAME`: put web/console into a deployed stack's console bucket, with the
config.json that points it at the stack's API and Cognito's hosted UI, then have CloudFront fetch it again.

The files are what `giftcard serve` serves at /console; only config.json differs (locally `{"auth": "local"}`).
Run it after each `sam deploy` that changed web/console or the stack's outputs. Files the bucket holds that the site
no longer has are removed, so a deleted page does not linger.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giftcard_local import cli, console, embedded

CONFIG = 'config.json'
CACHE_CONTROL = 'no-cache'  # file names carry no version: browsers revalidate, so a publish is seen on the next load
REQUIRED_OUTPUTS = (
    'ApiUrl',
    'ConsoleUrl',
    'ConsoleBucketName',
    'ConsoleDistributionId',
    'ConsoleClientId',
    'SignInUrl',
)


class PublishError(Exception):
    """The console cannot be published; the message says why."""


@dataclass(frozen=True)
class SiteFile:
    key: str  # the object key, and the path under the distribution's root
    path: Path
    content_type: str


def site_files(root: Path) -> list[SiteFile]:
    """Every file of the console but its local config.json, in key order (hidden files left out)."""
    files = []
    for path in sorted(root.rglob('*')):
        relative = path.relative_to(root)
        if not path.is_file() or any(part.startswith('.') for part in relative.parts) or relative.as_posix() == CONFIG:
            continue
        files.append(SiteFile(relative.as_posix(), path, console.TYPES.get(path.suffix, 'application/octet-stream')))
    return files


def deployed_config(outputs: dict[str, str]) -> dict[str, Any]:
    """The console's config.json for a stack: its API, and sign-in through the hosted UI with the console's client."""
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise PublishError(f'the stack has no output {", ".join(missing)}: deploy the current template.yaml first')
    console_url = outputs['ConsoleUrl']
    return {
        'auth': 'cognito',
        'api': outputs['ApiUrl'].rstrip('/'),
        'cognito': {
            'domain': outputs['SignInUrl'].rstrip('/'),
            'client_id': outputs['ConsoleClientId'],
            'redirect_uri': console_url,
            'logout_uri': console_url,
            'scope': 'openid email',
        },
    }


def publish(root: Path, outputs: dict[str, str], s3: Any, cloudfront: Any) -> list[str]:
    """Upload the site and its config, remove what it no longer has, invalidate the distribution. Answers the keys
    written."""
    config = deployed_config(outputs)
    bucket = outputs['ConsoleBucketName']
    written = []
    for file in site_files(root):
        s3.put_object(
            Bucket=bucket,
            Key=file.key,
            Body=file.path.read_bytes(),
            ContentType=file.content_type,
            CacheControl=CACHE_CONTROL,
        )
        written.append(file.key)
    s3.put_object(
        Bucket=bucket,
        Key=CONFIG,
        Body=json.dumps(config, indent=2).encode(),
        ContentType=console.TYPES['.json'],
        CacheControl=CACHE_CONTROL,
    )
    written.append(CONFIG)
    stale = [key for key in _keys(s3, bucket) if key not in set(written)]
    for start in range(0, len(stale), 1000):
        batch = [{'Key': key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={'Objects': batch, 'Quiet': True})
    cloudfront.create_invalidation(
        DistributionId=outputs['ConsoleDistributionId'],
        InvalidationBatch={'Paths': {'Quantity': 1, 'Items': ['/*']}, 'CallerReference': f'publish-{time.time_ns()}'},
    )
    return written


def _keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket):
        keys.extend(item['Key'] for item in page.get('Contents', []))
    return keys


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    [described] = cloudformation.describe_stacks(StackName=stack)['Stacks']
    return {o['OutputKey']: o['OutputValue'] for o in described.get('Outputs', [])}


def _add_command(sub: cli.Commands) -> None:
    p = sub.add_parser('console-publish', help="publish web/console to a deployed stack's console bucket")
    p.add_argument('--stack', required=True, help='the CloudFormation stack name (as given to sam deploy)')
    p.add_argument('--region', default=None, help='the stack region (default: the AWS configuration)')


cli.EXTENSIONS.append(_add_command)


@cli.command('console-publish')
def cmd_console_publish(args: argparse.Namespace) -> int:
    import boto3

    root = (embedded.project_root() or Path.cwd()) / 'web' / 'console'
    session = boto3.session.Session(region_name=args.region)
    try:
        outputs = stack_outputs(session.client('cloudformation'), args.stack)
        written = publish(root, outputs, session.client('s3'), session.client('cloudfront'))
    except PublishError as exc:
        print(f'giftcard console-publish: {exc}', file=sys.stderr)
        return 1
    print(f'published {len(written)} files; the console is at {outputs["ConsoleUrl"]}')
    return 0
