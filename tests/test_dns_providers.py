"""DNS providers: the contract every registered provider passes, then provider specifics.

The contract suite is parametrized over every code in the registry (native providers
and every dns-lexicon provider) and runs without network. The lexicon path is driven
for real through lexicon's `localzone` provider (a zone file), Huawei Cloud DNS against
a local fake of its API (tests/fakes/huaweicloud_dns.py).
"""

import inspect
import json
import re
import socket
from urllib.parse import quote

import dns.rdatatype
import dns.zone
import pytest
import tldextract
from lexicon._private.discovery import find_providers, load_provider_module

from certs.dns import huaweicloud, lexicon_providers
from certs.dns.base import DnsProvider, DnsProviderError
from certs.dns.huaweicloud import HuaweiCloudProvider
from certs.dns.registry import all_providers, catalog, provider_class
from certs.dns.rfc2136 import Rfc2136Provider
from tests.fakes.huaweicloud_dns import FakeHuaweiDns

CODES = sorted(all_providers())
# Names that say "I am a secret" (never an identifier or a path).
SECRET_NAME = re.compile(r"token|secret|passw|psw|pass_phrase|totp")
SECRET_LOOKING = re.compile(r"token|secret|passw|psw|pass|key|2fa|totp|account_info")
NOT_SECRET_NAME = re.compile(r"_(id|file)$")


def dummy_values(cls):
    """A value for every declared field: its default, else one that is a number, base64 and a name."""
    return {f.name: f.default or "1234" for f in cls.fields}


@pytest.fixture
def offline(monkeypatch):
    """Every attempt to resolve or connect fails, and is recorded."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def loopback_only(monkeypatch):
    """Connections to 127.0.0.1 work, also when a proxy is configured; anything else fails and is recorded."""
    attempts = []
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost"):
            attempts.append(host)
            raise OSError(f"network disabled in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


# -- the contract, for every registered provider ---------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_it_is_constructed_from_its_declared_fields_without_network(code, offline):
    cls = provider_class(code)
    values = dummy_values(cls)

    provider = cls(values)

    assert provider.values == values
    assert offline == []


@pytest.mark.parametrize("code", CODES)
def test_it_names_every_missing_required_field(code):
    cls = provider_class(code)
    required = [f for f in cls.fields if f.required and not f.default]
    alternatives = getattr(cls, "alternatives", ())
    if alternatives:  # one of several credential sets is required: nothing names the first set
        labels = {f.name: str(f.label) for f in cls.fields}
        with pytest.raises(DnsProviderError) as missing_set:
            cls({})
        assert all(labels[name] in str(missing_set.value) for name in alternatives[0])
        return
    if not required:  # nothing is required on its own (alternative credential sets)
        assert cls({}).values == {f.name: f.default for f in cls.fields}
        return

    with pytest.raises(DnsProviderError) as missing_all:
        cls({})
    for field in required:
        assert str(field.label) in str(missing_all.value)

    first, *rest = required
    with pytest.raises(DnsProviderError) as missing_one:
        cls({**dummy_values(cls), first.name: ""})
    assert str(first.label) in str(missing_one.value)
    assert all(str(f.label) not in str(missing_one.value) for f in rest if str(f.label) not in str(first.label))


@pytest.mark.parametrize("code", CODES)
def test_it_has_a_label_and_well_formed_fields(code):
    cls = provider_class(code)
    names = [f.name for f in cls.fields]

    assert cls.code == code
    assert str(cls.label).strip()
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names)
    assert all(str(f.label).strip() for f in cls.fields)
    assert cls.ttl > 0
    assert cls.propagation_timeout >= 60


@pytest.mark.parametrize("code", CODES)
def test_it_declares_its_secrets_sensitive(code):
    cls = provider_class(code)
    secret_looking = [f for f in cls.fields if SECRET_LOOKING.search(f.name) and not NOT_SECRET_NAME.search(f.name)]
    plainly_secret = [f.name for f in cls.fields if SECRET_NAME.search(f.name) and not NOT_SECRET_NAME.search(f.name)]

    if secret_looking:
        assert cls.sensitive_fields(), f"{code} has secret-looking options but declares none sensitive"
    assert set(plainly_secret) <= set(cls.sensitive_fields())
    assert not [f.name for f in cls.fields if f.sensitive and f.default], "a secret must not have a default"


@pytest.mark.parametrize("code", CODES)
def test_it_implements_present_cleanup_and_check(code):
    cls = provider_class(code)

    for method in ("present", "cleanup", "check"):
        assert getattr(cls, method) is not getattr(DnsProvider, method), f"{code} lacks {method}"
    assert list(inspect.signature(cls.present).parameters) == ["self", "name", "value"]
    assert list(inspect.signature(cls.cleanup).parameters) == ["self", "name", "value", "state"]


def test_the_registry_offers_every_lexicon_provider_and_the_native_ones():
    lexicon_codes = set(find_providers()) - lexicon_providers.EXCLUDED

    assert lexicon_codes <= set(CODES)
    assert {"rfc2136", "huaweicloud"} <= set(CODES)
    assert "auto" not in CODES
    assert len(CODES) == len(lexicon_codes) + 2


def test_the_catalog_is_plain_data_for_the_api():
    entries = {entry["code"]: entry for entry in json.loads(json.dumps(catalog()))}

    assert set(entries) == set(CODES)
    cloudflare = entries["cloudflare"]
    assert cloudflare["label"] == "Cloudflare"
    assert {"name": "auth_token", "sensitive": True, "required": True}.items() <= cloudflare["fields"][1].items()


# -- lexicon providers -----------------------------------------------------------------


def test_cloudflare_fields_are_derived_from_lexicon_options():
    cls = provider_class("cloudflare")

    assert [f.name for f in cls.fields] == ["auth_username", "auth_token", "zone_id", "zone"]
    assert cls.sensitive_fields() == ["auth_token"]
    assert [f.name for f in cls.fields if f.required] == ["auth_token"]


def test_fields_follow_lexicon_for_providers_without_first_class_metadata():
    vultr = provider_class("vultr")
    infoblox = provider_class("infoblox")
    transip = provider_class("transip")

    assert [(f.name, f.label, f.sensitive, f.required) for f in vultr.fields[:-1]] == [
        ("auth_token", "Token", True, True)]
    assert {f.name: f.default for f in infoblox.fields}["ib_view"] == "default"
    assert {f.name: f.required for f in infoblox.fields}["ib_host"] is True
    key_is_global = {f.name: f for f in transip.fields}["auth_key_is_global"]
    assert (key_is_global.default, key_is_global.required, key_is_global.sensitive) == ("false", False, False)


@pytest.mark.parametrize("code", ["dnspod", "aliyun", "qcloud", "cloudflare", "godaddy", "route53", "ovh",
                                  "namecheap", "digitalocean", "hetzner", "gandi", "linode", "powerdns"])
def test_common_providers_are_first_class(code):
    cls = provider_class(code)

    assert str(cls.label) == str(lexicon_providers.FIRST_CLASS[code]["label"])
    assert str(cls.help).strip()


def test_qcloud_is_tencent_cloud_with_both_keys_required():
    cls = provider_class("qcloud")

    assert "Tencent Cloud" in str(cls.label)
    assert [f.name for f in cls.fields if f.required] == ["secret_id", "secret_key"]
    assert cls.sensitive_fields() == ["secret_key"]


def test_slow_providers_get_longer_propagation_timeouts():
    assert provider_class("namecheap").propagation_timeout == 600
    assert provider_class("godaddy").propagation_timeout == 600
    assert provider_class("cloudflare").propagation_timeout == 300
    assert provider_class("vultr").propagation_timeout == 300


def test_the_zone_comes_from_the_bundled_public_suffix_list(offline):
    provider = provider_class("cloudflare")({"auth_token": "t"})

    assert provider._zone_for("_acme-challenge.www.example.co.uk") == "example.co.uk"
    assert provider._zone_for("_acme-challenge.example.com") == "example.com"
    # GoDaddy's lexicon module uses tldextract's module-level extractor
    assert tldextract.extract("_acme-challenge.shop.example.com.cn").suffix == "com.cn"
    assert offline == []


def test_a_name_outside_the_public_suffix_list_needs_the_zone_field(offline):
    provider = provider_class("cloudflare")({"auth_token": "t"})

    with pytest.raises(DnsProviderError, match="Zone"):
        provider._zone_for("_acme-challenge.example.test")


def test_the_zone_field_overrides_and_rejects_names_outside_it():
    provider = provider_class("cloudflare")({"auth_token": "t", "zone": "Sub.Example.com."})

    assert provider._zone_for("_acme-challenge.www.sub.example.com") == "sub.example.com"
    with pytest.raises(DnsProviderError, match="not in the zone"):
        provider._zone_for("_acme-challenge.example.org")


def test_flags_and_choices_are_checked_when_constructed():
    namecheap = provider_class("namecheap")
    ovh = provider_class("ovh")
    keys = {"auth_username": "u", "auth_token": "t"}

    assert namecheap({**keys, "auth_sandbox": "true"}).options["auth_sandbox"] is True
    assert "auth_sandbox" not in namecheap({**keys, "auth_sandbox": "false"}).options
    with pytest.raises(DnsProviderError, match="true or false"):
        namecheap({**keys, "auth_sandbox": "maybe"})
    with pytest.raises(DnsProviderError, match="ovh-eu"):
        ovh({"auth_entrypoint": "mars", "auth_application_key": "k", "auth_application_secret": "s",
             "auth_consumer_key": "c"})


ZONE_FILE = """\
$ORIGIN example.test.
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 300
@ IN NS ns1.example.test.
ns1 IN A 127.0.0.1
"""


def txt_values(path, name):
    zone = dns.zone.from_file(str(path), origin="example.test.", relativize=False)
    rdataset = zone.get_rdataset(name + ".", dns.rdatatype.TXT)
    return sorted(b"".join(r.strings).decode() for r in rdataset) if rdataset else []


def test_a_lexicon_provider_adds_two_values_under_one_name_and_removes_only_its_own(tmp_path, offline):
    zone_file = tmp_path / "example.test.zone"
    zone_file.write_text(ZONE_FILE)
    provider = provider_class("localzone")({"filename": str(zone_file), "zone": "example.test"})
    name = "_acme-challenge.example.test"

    apex = provider.present(name, "apex-value")
    wildcard = provider.present(name, "wildcard-value")
    provider.present(name, "wildcard-value")  # a retried present is no error
    assert apex == {"domain": "example.test", "name": name, "content": "apex-value"}
    assert txt_values(zone_file, name) == ["apex-value", "wildcard-value"]

    provider.cleanup(name, "apex-value", apex)
    assert txt_values(zone_file, name) == ["wildcard-value"]
    provider.cleanup(name, "apex-value", apex)  # twice is no error
    provider.cleanup(name, "wildcard-value", wildcard)
    assert txt_values(zone_file, name) == []
    provider.check()
    assert offline == []


def test_check_needs_a_zone_for_lexicon_providers():
    with pytest.raises(DnsProviderError, match="zone"):
        provider_class("cloudflare")({"auth_token": "t"}).check()


def test_lexicon_errors_do_not_reveal_secrets(monkeypatch):
    secret = "s3cr3t/+token="
    lexicon_class = load_provider_module("powerdns").Provider

    def authenticate(self):
        token = self._get_provider_option("auth_token")
        raise RuntimeError(f"401 Unauthorized for url: http://127.0.0.1:1/api?key={quote(token, safe='')} ({token})")

    monkeypatch.setattr(lexicon_class, "authenticate", authenticate)
    provider = provider_class("powerdns")({"auth_token": secret, "pdns_server": "http://127.0.0.1:1",
                                           "zone": "example.test"})

    with pytest.raises(DnsProviderError) as error:
        provider.present("_acme-challenge.example.test", "v")

    message = str(error.value)
    assert "401 Unauthorized" in message and "***" in message
    assert secret not in message and quote(secret, safe="") not in message


# -- Huawei Cloud DNS ------------------------------------------------------------------

HUAWEI_EXAMPLE_HEADERS = {"content-type": "application/json", "host": "service.region.example.com",
                          "x-sdk-date": "20191115T033655Z"}
HUAWEI_EXAMPLE_QUERY = [("marker", "13551d6b-755d-4757-b956-536f674975c0"), ("limit", "2")]
HUAWEI_EXAMPLE_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"


def test_huawei_signing_matches_the_published_examples():
    # Huawei's API Request Signing Guide ("Creating a To-Be-Signed String") hashes this
    # canonical request to b25362e6...; Huawei's Java SDK (TestAKSKSigner) signs the same
    # request with AK "testAK" / SK "testSK" to 1ce02ffe....
    canonical, signed = huaweicloud.canonical_request("GET", HUAWEI_EXAMPLE_PATH, HUAWEI_EXAMPLE_QUERY,
                                                      HUAWEI_EXAMPLE_HEADERS, b"")
    import hashlib

    assert signed == "content-type;host;x-sdk-date"
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a")
    assert huaweicloud.authorization("testAK", "testSK", "GET", HUAWEI_EXAMPLE_PATH, HUAWEI_EXAMPLE_QUERY,
                                     HUAWEI_EXAMPLE_HEADERS, b"") == (
        "SDK-HMAC-SHA256 Access=testAK, SignedHeaders=content-type;host;x-sdk-date, "
        "Signature=1ce02ffed91dfc294aed8863aaf0fec29ccbf2f45ddcca7f120baabddba29782")


HUAWEI_AK = "AKTESTFAKE0001"
HUAWEI_SK = "sk-Very-Secret-Value-0001"


@pytest.fixture
def huawei_dns(loopback_only):
    with FakeHuaweiDns(HUAWEI_AK, HUAWEI_SK, zones=["example.com.", "sub.example.com."]) as fake:
        yield fake
    assert loopback_only == []


def huawei(fake, **values):
    return HuaweiCloudProvider({"access_key_id": HUAWEI_AK, "secret_access_key": HUAWEI_SK,
                                "endpoint": fake.url, **values})


def test_huawei_adds_a_second_value_under_one_name_and_removes_only_its_own(huawei_dns):
    provider = huawei(huawei_dns)
    name = "_acme-challenge.example.com"

    apex = provider.present(name, "apex-value")
    wildcard = provider.present(name, "wildcard-value")
    provider.present(name, "wildcard-value")  # a retried present adds nothing
    assert huawei_dns.txt_values(name) == ["apex-value", "wildcard-value"]
    assert apex["zone"] == "example.com." and apex["recordset_id"] == wildcard["recordset_id"]

    provider.cleanup(name, "apex-value", apex)
    assert huawei_dns.txt_values(name) == ["wildcard-value"]
    provider.cleanup(name, "apex-value", apex)  # twice is no error, and removes nothing else
    assert huawei_dns.txt_values(name) == ["wildcard-value"]

    provider.cleanup(name, "wildcard-value", {})  # without state the zone is looked up again
    assert huawei_dns.txt_values(name) == []
    assert ("DELETE", f"/v2/zones/{apex['zone_id']}/recordsets/{apex['recordset_id']}") in huawei_dns.requests


def test_huawei_finds_the_closest_zone_or_uses_the_zone_field(huawei_dns):
    deep = huawei(huawei_dns).present("_acme-challenge.www.sub.example.com", "v1")
    forced = huawei(huawei_dns, zone="example.com").present("_acme-challenge.other.example.com", "v2")

    assert deep["zone"] == "sub.example.com."
    assert forced["zone"] == "example.com."
    assert huawei_dns.txt_values("_acme-challenge.www.sub.example.com") == ["v1"]
    with pytest.raises(DnsProviderError, match="No Huawei Cloud DNS public zone"):
        huawei(huawei_dns).present("_acme-challenge.example.org", "v3")


def test_huawei_rejects_a_wrong_secret_without_revealing_it(huawei_dns):
    wrong_secret = "sk-Wrong-Secret-Value-9999"
    provider = huawei(huawei_dns, secret_access_key=wrong_secret)

    for attempt in (lambda: provider.present("_acme-challenge.example.com", "v"), provider.check):
        with pytest.raises(DnsProviderError) as error:
            attempt()
        # Huawei's error code, not its message: error texts never repeat a response body.
        assert "HTTP 401" in str(error.value) and "FAKE.0301" in str(error.value)
        assert "signature" not in str(error.value)
        assert wrong_secret not in str(error.value) and HUAWEI_SK not in str(error.value)
    assert huawei_dns.txt_values("_acme-challenge.example.com") == []


def test_huawei_check_proves_the_credentials_and_the_zone(huawei_dns):
    huawei(huawei_dns).check()
    huawei(huawei_dns, zone="sub.example.com").check()
    with pytest.raises(DnsProviderError, match="No Huawei Cloud DNS public zone"):
        huawei(huawei_dns, zone="example.net").check()


def test_huawei_uses_the_region_endpoint_by_default():
    provider = HuaweiCloudProvider({"access_key_id": "ak", "secret_access_key": "sk"})
    elsewhere = HuaweiCloudProvider({"access_key_id": "ak", "secret_access_key": "sk", "region": "ap-southeast-1"})

    assert provider.base == "https://dns.cn-north-4.myhuaweicloud.com"
    assert elsewhere.base == "https://dns.ap-southeast-1.myhuaweicloud.com"


def test_huawei_reports_an_unreachable_endpoint(loopback_only):
    with FakeHuaweiDns(HUAWEI_AK, HUAWEI_SK) as fake:
        url = fake.url
    provider = HuaweiCloudProvider({"access_key_id": HUAWEI_AK, "secret_access_key": HUAWEI_SK, "endpoint": url})

    with pytest.raises(DnsProviderError, match="No answer from"):
        provider.check()


HUAWEI_IAM_USER = {"iam_username": "dns-bot", "iam_password": "Iam-Very-Secret-Password-1",
                   "iam_domain_name": "example-account"}


@pytest.fixture
def huawei_iam(loopback_only):
    users = {("example-account", "dns-bot"): HUAWEI_IAM_USER["iam_password"]}
    with FakeHuaweiDns(HUAWEI_AK, HUAWEI_SK, zones=["example.com."], users=users) as fake:
        yield fake
    assert loopback_only == []


def test_huawei_signs_in_as_an_iam_user_like_acme_sh(huawei_iam):
    provider = HuaweiCloudProvider({**HUAWEI_IAM_USER, "region": "ap-southeast-1", "endpoint": huawei_iam.url,
                                    "iam_endpoint": huawei_iam.url})
    name = "_acme-challenge.example.com"

    state = provider.present(name, "iam-value")
    assert huawei_iam.txt_values(name) == ["iam-value"]
    provider.cleanup(name, "iam-value", state)
    assert huawei_iam.txt_values(name) == []

    # One sign-in for the whole exchange, scoped to the region's project as acme.sh scopes it.
    [sign_in] = huawei_iam.token_requests
    assert sign_in["auth"]["identity"]["password"]["user"]["domain"] == {"name": "example-account"}
    assert sign_in["auth"]["scope"] == {"project": {"name": "ap-southeast-1"}}


def test_huawei_reports_a_wrong_iam_password_without_revealing_it(huawei_iam):
    wrong = "Iam-Wrong-Password-9"
    provider = HuaweiCloudProvider({**HUAWEI_IAM_USER, "iam_password": wrong, "endpoint": huawei_iam.url,
                                    "iam_endpoint": huawei_iam.url})

    with pytest.raises(DnsProviderError) as error:
        provider.present("_acme-challenge.example.com", "v")
    assert "IAM refused the sign-in of dns-bot (HTTP 401)" in str(error.value)
    assert wrong not in str(error.value)
    assert huawei_iam.txt_values("_acme-challenge.example.com") == []


@pytest.mark.parametrize(("values", "missing"), [
    ({}, "Access key ID (AK), Secret access key (SK)"),
    ({"access_key_id": "ak"}, "Secret access key (SK)"),
    ({"iam_username": "dns-bot", "iam_password": "pw"}, "Account name"),
])
def test_huawei_says_which_credentials_are_missing(values, missing):
    with pytest.raises(DnsProviderError) as error:
        HuaweiCloudProvider(values)
    assert str(error.value).endswith(f"Missing: {missing}")
    assert "or an IAM user" in str(error.value)


# -- RFC 2136 --------------------------------------------------------------------------

RFC2136 = {"server": "127.0.0.1", "tsig_key_name": "acme-key", "tsig_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ="}


def test_rfc2136_rejects_a_secret_that_is_not_base64():
    with pytest.raises(DnsProviderError, match="base64"):
        Rfc2136Provider({**RFC2136, "tsig_secret": "not base64!"})


def test_rfc2136_rejects_an_unknown_algorithm():
    with pytest.raises(DnsProviderError, match="hmac-sha256"):
        Rfc2136Provider({**RFC2136, "tsig_algorithm": "hmac-crc32"})


def test_rfc2136_rejects_a_port_that_is_not_a_number():
    with pytest.raises(DnsProviderError, match="port"):
        Rfc2136Provider({**RFC2136, "port": "fifty-three"})


def test_rfc2136_names_the_missing_fields():
    with pytest.raises(DnsProviderError) as error:
        Rfc2136Provider({"tsig_key_name": "acme-key"})

    assert "Server address" in str(error.value) and "TSIG secret" in str(error.value)
    assert "TSIG key name" not in str(error.value)
