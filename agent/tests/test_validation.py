"""Shared validators: normalized values out, ValidationError(field, why) for everything else."""

from __future__ import annotations

import pytest

from agent import validation as v


@pytest.mark.parametrize(
    "func, value, expected",
    [
        (v.domain_name, "Example.COM.", "example.com"),
        (v.domain_name, "пример.рф", "xn--e1afmkfd.xn--p1ai"),
        (v.domain_name, "日本語.jp", "xn--wgv71a119e.jp"),
        (v.email_address, "Info@Example.com", "info@example.com"),
        (v.sender, "spammer.org", "spammer.org"),
        (v.cidr, "10.0.0.0/8", "10.0.0.0/8"),
        (v.cidr, "", ""),
        (v.port_ranges, "443, 22,1000-2000", [(22, 22), (443, 443), (1000, 2000)]),
        (v.cron_schedule, "*/5  * * * 1-5", "*/5 * * * 1-5"),
        (v.cron_schedule, "@daily", "@daily"),
        (v.relative_path, "www/site/", "www/site"),
        (v.record_name, "_dmarc", "_dmarc"),
        (v.record_name, "*.dev", "*.dev"),
    ],
)
def test_good_values_are_normalized(func, value, expected):
    """Valid input comes back in the form written to files."""
    assert func(value, "f") == expected


@pytest.mark.parametrize(
    "func, value",
    [
        (v.domain_name, "a" * 64 + ".com"),
        (v.domain_name, ".".join(["a" * 63] * 4) + ".com"),
        (v.domain_name, "p\u0430ypal.com"),
        (v.domain_name, "xn--zz.com"),
        (v.domain_name, "localhost"),
        (v.domain_name, "example.com\n"),
        (v.email_address, "a@b@example.com"),
        (v.local_part, "a:b"),
        (v.ip_address, "1.2.3.4.5"),
        (v.cidr, "10.0.0.1/8"),
        (v.cidr, "10.0.0.0/33"),
        (v.port_ranges, "0"),
        (v.port_ranges, "65536"),
        (v.port_ranges, "2000-1000"),
        (v.cron_schedule, "* * * * * *"),
        (v.cron_schedule, "61 * * * *"),
        (v.cron_command, "a\nb"),
        (v.comment, "x; y"),
        (v.username, "Root"),
        (v.uid, 999),
        (v.uid, True),
        (v.relative_path, "../etc"),
        (v.relative_path, "/etc"),
        (v.password, "short"),
        (v.text, "a" * 102400),
    ],
)
def test_bad_values_raise_naming_the_field(func, value):
    """Invalid input raises ValidationError carrying the field name given."""
    with pytest.raises(v.ValidationError) as caught:
        func(value, "f")
    assert caught.value.field == "f"


def test_record_values_are_canonical():
    """Record data is parsed by dnspython and written back in canonical absolute form."""
    assert v.record_value("example.com", "MX", "mail", 10) == "10 mail.example.com."
    assert v.record_value("example.com", "TXT", 'say "hi"') == '"say \\"hi\\""'
    with pytest.raises(v.ValidationError):
        v.record_value("example.com", "A", "1.2.3.4 ; x")


def test_plain_names_skip_idna_and_mean_what_idna_says():
    """A name of plain letter-digit-hyphen labels is taken without the IDNA codec; every name over an
    alphabet of a letter, a digit and '-' (labels up to 7 long, and the edges: 63/64 long, '--' in the
    third and fourth places, xn--) gives what the codec gives: the same name, or an error."""
    import itertools

    import idna

    labels = ["".join(t) for n in range(1, 8) for t in itertools.product("a1-", repeat=n)]
    labels += ["a" * 63, "a" * 64, "ab--c", "xn--80ak6aa92e", "Ab-Cd", "a_b"]
    for label in labels:
        for name in (f"{label}.com", f"x.{label}", f"{label}.{label}"):
            try:
                expected = idna.encode(name, uts46=True).decode("ascii").lower()
            except (idna.IDNAError, UnicodeError):
                expected = None
            try:
                got = v.domain_name(name)
            except v.ValidationError:
                got = None
            if expected is not None and (expected.split(".")[-1].isdigit() or len(expected) > 253):
                expected = None  # refused by domain_name's own rules, either way
            assert got == expected, name
    assert v._PLAIN_NAME.fullmatch("www.example.com") and not v._PLAIN_NAME.fullmatch("xn--80ak6aa92e.com")


@pytest.mark.parametrize("typed, field, says", [
    ("bad_domain!.com", "name", "'_' is not allowed in a domain name"),
    ("https://acme-x.com/", "name", "leave out https://"),
    ("http://acme-x.com", "name", "leave out http://"),
    ("acme-x.com/shop", "name", "has no path"),
    ("info@acme-x.com", "name", "that is an e-mail address"),
    ("acme x.com", "name", "must not contain spaces"),
    ("-acme.com", "name", "must not begin or end with a hyphen"),
    ("acme..com", "name", "two dots in a row"),
    ("localhost", "name", "at least two parts, like example.com"),
    ("192.0.2.10", "name", "the last part must not be a number"),
])
def test_a_mistyped_domain_name_is_refused_in_words_that_say_what_to_type(typed, field, says):
    """What people paste into a name field gets a message saying what to change, never a codec's words."""
    with pytest.raises(v.ValidationError) as refused:
        v.domain_name(typed, field)
    assert refused.value.field == field
    assert says in refused.value.message, refused.value.message
    assert "Codepoint" not in refused.value.message and "U+" not in refused.value.message


@pytest.mark.parametrize("call, field, says", [
    (lambda: v.ip_address("1.2.3"), "ip", "'1.2.3' is not an IP address: type an IPv4 address like 192.0.2.10"),
    (lambda: v.cidr("10.0.0.1/24"), "source", "type 10.0.0.0/24 for the whole network, or 10.0.0.1 alone"),
    (lambda: v.cidr("office"), "source", "is not an address or network"),
    (lambda: v.record_value("example.com", "A", "1.2.3"), "value", "is not valid for an A record: type an IPv4"),
    (lambda: v.record_value("example.com", "MX", "mail.example.com."), "priority", "an MX record needs a priority"),
    (lambda: v.record_value("example.com", "MX", "mail.example.com.", "ten"), "priority", "must be a whole number"),
])
def test_addresses_and_records_are_refused_with_an_example_of_what_fits(call, field, says):
    with pytest.raises(v.ValidationError) as refused:
        call()
    assert refused.value.field == field
    assert says in refused.value.message, refused.value.message
    assert "malformed" not in refused.value.message and "appear" not in refused.value.message


def test_a_unicode_domain_name_is_accepted_and_stored_as_its_a_label():
    assert v.domain_name("Пример.РФ") == "xn--e1afmkfd.xn--p1ai"
