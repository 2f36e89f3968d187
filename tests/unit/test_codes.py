"""Redemption codes as values: generation (randomness, alphabet, length), normalization, keyed hashing,
and the network a source address counts against. No database."""

from __future__ import annotations

import re
import secrets
from collections import Counter

import pytest
from giftcards import codes, crypto, limits, ratelimit

CODE_SHAPE = re.compile(r'^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$')
SAMPLE = 100_000


@pytest.fixture(scope='module')
def generated() -> list[str]:
    return [codes.generate_code() for _ in range(SAMPLE)]


@pytest.fixture
def hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed HMAC key, so hashing needs no key file."""
    monkeypatch.setattr(crypto, '_hash_key', lambda: b'k' * 32)


# --- generation ----------------------------------------------------------------------------------------


def test_alphabet_is_crockford_base32():
    assert len(codes.ALPHABET) == 32 == len(set(codes.ALPHABET))
    assert set(codes.ALPHABET).isdisjoint('ILOU')
    assert codes.SYMBOLS * 5 >= 80


def test_hundred_thousand_codes_are_unique(generated):
    assert len(set(generated)) == SAMPLE


def test_every_code_is_four_groups_of_four_crockford_symbols(generated):
    assert all(CODE_SHAPE.match(code) for code in generated)
    assert {len(code) for code in generated} == {19}


def test_every_symbol_appears_in_every_position_with_even_frequency(generated):
    """Per position, a chi-square test of the 32 symbol counts against uniform (31 degrees of freedom).

    P(chi2_31 > 80) is about 3e-6, so a fair generator fails this about once in 20,000 runs; a generator that
    favours symbols (modulo bias, a 6-bit source, a skewed alphabet) fails it every time."""
    compact = [code.replace('-', '') for code in generated]
    expected = SAMPLE / 32
    for position in range(codes.SYMBOLS):
        counts = Counter(code[position] for code in compact)
        assert set(counts) == set(codes.ALPHABET), f'position {position} misses symbols'
        chi2 = sum((counts[s] - expected) ** 2 / expected for s in codes.ALPHABET)
        assert chi2 < 80, f'position {position}: chi-square {chi2:.1f}'


def test_symbols_are_independent_of_their_neighbours(generated):
    """Adjacent pairs are uniform over the 1024 combinations (chi-square, 1023 degrees of freedom)."""
    compact = [code.replace('-', '') for code in generated]
    pairs = Counter(code[i : i + 2] for code in compact for i in range(0, codes.SYMBOLS, 2))
    expected = SAMPLE * codes.SYMBOLS / 2 / 1024
    chi2 = sum((pairs[a + b] - expected) ** 2 / expected for a in codes.ALPHABET for b in codes.ALPHABET)
    assert chi2 < 1250  # mean 1023, sd 45: five standard deviations


def test_code_is_eighty_bits_from_secrets(monkeypatch):
    drawn: list[int] = []

    def randbits(k: int) -> int:
        drawn.append(k)
        return (1 << 80) - 1

    monkeypatch.setattr(secrets, 'randbits', randbits)
    assert codes.generate_code() == 'ZZZZ-ZZZZ-ZZZZ-ZZZZ'
    assert drawn == [80]
    monkeypatch.setattr(secrets, 'randbits', lambda k: 1)
    assert codes.generate_code() == '0000-0000-0000-0001'


# --- normalization -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'typed',
    [
        'ABCD-EFGH-JKMN-PQR1',
        'abcd-efgh-jkmn-pqr1',
        'ABCDEFGHJKMNPQR1',
        ' abcd efgh jkmn pqr1 ',
        'AB-CD-EF-GH-JK-MN-PQ-R1',
        'ABCD\u2013EFGH\u2014JKMN\u2011PQR1',  # dashes copied from a document
        'ABCD-EFGH-JKMN-PQRI',  # I reads as 1
        'ABCD-EFGH-JKMN-PQRl',  # l reads as 1
        'abcd\tefgh\njkmn pqrL',
    ],
)
def test_normalization_accepts_the_ways_a_person_types_a_code(typed):
    assert codes.normalize(typed) == 'ABCD-EFGH-JKMN-PQR1'


def test_o_reads_as_zero():
    assert codes.normalize('oOoo-0000-0000-0000') == '0000-0000-0000-0000'


@pytest.mark.parametrize(
    'typed',
    [
        '',
        'ABCD-EFGH-JKMN-PQR',  # 15 symbols
        'ABCD-EFGH-JKMN-PQRST',  # 17
        'ABCD-EFGH-JKMN-PQRU',  # U is not a Crockford symbol
        'ABCD-EFGH-JKMN-PQR*',
        'ABCD_EFGH_JKMN_PQR1',
        'ABCD-EFGH-JKMN-PQR\u0661',  # an Arabic-Indic digit one
        'ABCD-EFGH-JKMN-PQ\u00dfR',  # upper-cases to SS
        'ABCD-EFGH-JKMN-PQR1' + ' ' * 200,
        "ABCD-EFGH'; DROP TABLE redemption_codes; --",
    ],
)
def test_normalization_rejects_what_cannot_be_a_code(typed):
    assert codes.normalize(typed) is None


def test_every_generated_code_is_its_own_normal_form(generated):
    assert all(codes.normalize(code) == code for code in generated[:1000])


# --- hashing -------------------------------------------------------------------------------------------


def test_every_spelling_of_a_code_looks_up_the_same_hash(hash_key):
    stored = codes.code_hash('7K3M-QX9P-RT2V-0A1B')
    for typed in ('7k3m-qx9p-rt2v-0a1b', '7K3MQX9PRT2V0A1B', '7K3M QX9P RT2V OA1B', '7k3m-qx9p-rt2v-oalb'):
        assert codes.lookup_hash(typed) == ('7K3M-QX9P-RT2V-0A1B', stored)


def test_hash_is_the_keyed_hash_for_redemption_codes(hash_key):
    digest = codes.code_hash('7K3M-QX9P-RT2V-0A1B')
    assert digest == crypto.keyed_hash('redemption_code', '7K3M-QX9P-RT2V-0A1B')
    assert len(digest) == 32
    assert digest != crypto.keyed_hash('card_code', '7K3M-QX9P-RT2V-0A1B')


def test_hash_depends_on_the_secret_key(monkeypatch):
    monkeypatch.setattr(crypto, '_hash_key', lambda: b'a' * 32)
    first = codes.code_hash('7K3M-QX9P-RT2V-0A1B')
    monkeypatch.setattr(crypto, '_hash_key', lambda: b'b' * 32)
    assert codes.code_hash('7K3M-QX9P-RT2V-0A1B') != first


def test_malformed_input_is_still_hashed_to_a_hash_no_code_has(hash_key):
    canonical, digest = codes.lookup_hash('not a code')
    assert canonical is None
    assert len(digest) == 32
    assert digest == codes.lookup_hash('x' * 10_000)[1]


def test_masked_code_shows_only_the_last_four():
    assert codes.masked('0A1B') == '****-****-****-0A1B'


# --- the source an attempt counts against --------------------------------------------------------------


@pytest.mark.parametrize(
    ('ip', 'address', 'network'),
    [
        ('203.0.113.7', '203.0.113.7', '203.0.113.7/32'),
        ('::ffff:203.0.113.7', '203.0.113.7', '203.0.113.7/32'),
        ('2001:db8:1:2:aaaa::1', '2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'),
        ('2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'),
        ('not an address', ratelimit.UNKNOWN_SOURCE, f'{ratelimit.UNKNOWN_SOURCE}/32'),
        (None, ratelimit.UNKNOWN_SOURCE, f'{ratelimit.UNKNOWN_SOURCE}/32'),
    ],
)
def test_source_counts_ipv4_addresses_singly_and_ipv6_by_slash_64(ip, address, network):
    origin = ratelimit.Source.of(ip, 'agent')
    assert (origin.ip, origin.network) == (address, network)


def test_source_user_agent_is_bounded():
    assert len(ratelimit.Source.of('203.0.113.7', 'x' * 5000).user_agent or '') == limits.USER_AGENT.max_length
