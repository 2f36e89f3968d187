"""The `giftcard` commands that operators run by hand: migrate, grant and outbox."""

from __future__ import annotations

import json

import pytest
from giftcard_local import cli
from giftcards import db, senders

from tests import delivery_support as ds
from tests import factories


def memberships_of(owner, subject: str) -> list[list[object]]:
    return owner.run(
        'SELECT role, agency_id::text, client_id::text FROM memberships WHERE subject = :s ORDER BY role', s=subject
    )


def test_migrate_on_a_migrated_database_applies_nothing(database_url, capsys):
    assert cli.main(['migrate']) == 0
    assert capsys.readouterr().out.startswith('applied 0 migration(s)')


def test_grant_adds_a_scoped_membership_once(owner, capsys):
    agency = factories.agency()
    subject = factories.unique('cli-user')
    assert cli.main(['grant', subject, 'agency_admin', '--agency', agency['id']]) == 0
    assert cli.main(['grant', subject, 'agency_admin', '--agency', agency['id']]) == 0
    assert f'granted agency_admin to {subject} on agency {agency["id"]}' in capsys.readouterr().out
    assert memberships_of(owner, subject) == [['agency_admin', agency['id'], None]]


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['agency_admin'], 'agency_admin needs --agency ID'),
        (['client_admin', '--agency', '00000000-0000-0000-0000-000000000000'], 'client_admin needs --client ID'),
        (['platform_admin', '--client', '00000000-0000-0000-0000-000000000000'], 'platform_admin takes no'),
        (['agency_admin', '--agency', '00000000-0000-0000-0000-000000000000'], 'no agency with id'),
        (['client_integration', '--client', 'not-a-uuid'], 'no client with id not-a-uuid'),
    ],
)
def test_grant_refuses_a_membership_without_its_scope(owner, capsys, args, message):
    subject = factories.unique('cli-user')
    assert cli.main(['grant', subject, *args]) == 2
    assert message in capsys.readouterr().err
    assert memberships_of(owner, subject) == []


def test_granted_role_is_what_the_api_sees(owner):
    from giftcards import auth

    client = factories.client(factories.agency()['id'])
    subject = factories.unique('cli-integration')
    assert cli.main(['grant', subject, 'client_integration', '--client', client['id']]) == 0
    with db.UnitOfWork() as uow:
        caller = auth.load_caller(uow, subject)
    assert caller.integration_of == frozenset({client['id']})
    assert caller.may_provision(client['id']) and not caller.administers_client(client['id'], client['agency_id'])


def test_outbox_lists_what_was_delivered_with_a_link_to_each_message(owner, capsys):
    s = ds.stocked(owner)
    address = ds.new_email()
    s.provision(delivery_method='email', delivery_address=address)

    assert cli.main(['outbox', '--limit', '500']) == 0
    listed = capsys.readouterr().out
    assert cli.main(['outbox', '--json', '--limit', '500']) == 0
    messages = [m for m in json.loads(capsys.readouterr().out) if m['to'] == address]

    line = next(line for line in listed.splitlines() if address in line)
    assert f'Your {s.brand["name"]} gift card ($25.00)' in line
    (message,) = messages
    assert (senders.outbox_dir() / message['page']).as_uri() in listed
    assert 'token=' in message['text']
    assert listed.rstrip().endswith((senders.outbox_dir() / senders.INDEX).as_uri())
    assert address in (senders.outbox_dir() / senders.INDEX).read_text()


def test_the_outbox_link_make_dev_prints_opens_a_page_even_before_anything_was_sent(tmp_path, monkeypatch, capsys):
    from giftcard_local.outbox_cli import index_url
    from giftcards.config import get_settings

    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))
    get_settings.cache_clear()
    try:
        assert cli.main(['outbox']) == 0
        url = index_url()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert 'the outbox is empty' in capsys.readouterr().out
    assert url == (tmp_path / 'outbox' / 'index.html').as_uri()
    assert 'Local outbox' in (tmp_path / 'outbox' / 'index.html').read_text()
