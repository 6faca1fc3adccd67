"""The public REST contract: paths and field names other people's scripts rely on."""

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    # --fail-on-warn: an ambiguous serializer field would make the published schema lie.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def properties(schema, name):
    return schema["components"]["schemas"][name]["properties"]


def test_the_paths_of_the_contract_exist(schema):
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/sites/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/sites/{id}/"])
    assert {"get", "post"} <= set(paths["/api/v1/acme-accounts/"])
    assert {"get", "post"} <= set(paths["/api/v1/certificates/"])
    assert "get" in paths["/api/v1/certificates/{id}/"]
    assert "post" in paths["/api/v1/certificates/{id}/renew/"]


def test_site_fields(schema):
    assert {"domains", "root", "proxy_pass", "force_https", "hsts", "http2"} <= set(properties(schema, "Site"))


def test_the_eab_hmac_key_is_write_only(schema):
    response_fields = properties(schema, "AcmeAccount")
    request_fields = properties(schema, "AcmeAccountRequest")
    assert {"directory_url", "email", "eab_kid"} <= set(response_fields)
    assert "eab_hmac_key" in request_fields and "eab_hmac_key" not in response_fields


def test_certificate_fields(schema):
    fields = properties(schema, "Certificate")
    assert {"domains", "acme_account", "key_type", "challenge", "site", "status", "not_before", "not_after",
            "serial", "issuer", "last_error", "order"} <= set(fields)
    key_types = schema["components"]["schemas"]["KeyTypeEnum"]["enum"]
    assert key_types == ["ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"]


def test_dns_paths_and_fields(schema):
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/dns-credentials/"])
    assert {"get", "put", "patch", "delete"} <= set(paths["/api/v1/dns-credentials/{id}/"])
    assert "get" in paths["/api/v1/dns-providers/"]
    assert "post" in paths["/api/v1/certificates/{id}/continue/"]
    assert {"dns_credential", "challenge_alias"} <= set(properties(schema, "Certificate"))
    assert "credentials" in properties(schema, "DnsCredentialRequest")
    assert "credentials" not in properties(schema, "DnsCredential")  # write-only: never read back
    assert set(schema["components"]["schemas"]["ChallengeEnum"]["enum"]) == {
        "http-01", "dns-01", "dns-01-manual", "http-01-webroot", "http-01-standalone", "http-01-nginx", "http-01-apache"}
    assert {"webroot", "server_config"} <= set(properties(schema, "Certificate"))


def test_deleting_a_site_says_what_becomes_of_its_certificates(schema):
    [parameter] = [p for p in schema["paths"]["/api/v1/sites/{id}/"]["delete"]["parameters"]
                   if p["name"] == "certificates"]
    assert parameter["in"] == "query" and not parameter.get("required")
    assert set(parameter["schema"]["enum"]) == {"keep", "stop", "revoke"}
    assert parameter["schema"]["default"] == "keep" and "Default: keep" in parameter["description"]
