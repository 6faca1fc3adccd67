"""Deleting what something may still use: DNS credentials (certificates) and reload presets
(install targets). The pages and the API refuse while it is in use, and refuse the same way
when it comes into use between their check and the delete."""

import json
from unittest import mock

import pytest
from django.urls import reverse

from certs.models import Certificate, DnsCredential, InstallTarget, ReloadPreset
from panel.toolkit.deletion import InUse, delete_unless_in_use
from tests.test_roles import api_for, preset  # noqa: F401 (preset: a fixture)


@pytest.fixture
def credential(alice):
    fields = {"server": "192.0.2.53", "zone": "example.com", "tsig_key_name": "k", "tsig_secret": "c2VjcmV0"}
    return DnsCredential.objects.create(owner=alice, provider="rfc2136", name="ns1", credentials=json.dumps(fields))


def certificate_using(credential):
    return Certificate.objects.create(owner=credential.owner, domains=["a.example.com"], challenge="dns-01",
                                      dns_credential=credential)


def target_using(preset, owner):
    certificate = Certificate.objects.create(owner=owner, domains=["a.example.com"])
    return InstallTarget.objects.create(owner=owner, certificate=certificate, cert_path="/x", reload_preset=preset)


def used_meanwhile(model, start_using):
    """Patches model.delete so that, just before the row goes, something starts using it."""
    real_delete = model.delete

    def delete(row, *args, **kwargs):
        start_using(row)
        return real_delete(row, *args, **kwargs)

    return mock.patch.object(model, "delete", delete)


def test_it_deletes_a_row_nothing_uses(credential):
    delete_unless_in_use(credential, credential.certificates)
    assert not DnsCredential.objects.exists()


def test_it_keeps_a_row_in_use_and_counts_its_users(credential):
    certificate_using(credential)
    certificate_using(credential)
    with pytest.raises(InUse) as refused:
        delete_unless_in_use(credential, credential.certificates)
    assert refused.value.count == 2
    assert DnsCredential.objects.filter(pk=credential.pk).exists()


def test_a_row_that_comes_into_use_meanwhile_is_kept(credential):
    with used_meanwhile(DnsCredential, certificate_using), pytest.raises(InUse) as refused:
        delete_unless_in_use(credential, credential.certificates)
    assert refused.value.count == 1
    assert DnsCredential.objects.filter(pk=credential.pk).exists()


def test_dns_credentials_used_meanwhile_are_refused_by_the_page_and_the_api(alice, alice_client, credential):
    with used_meanwhile(DnsCredential, certificate_using):
        response = alice_client.post(reverse("ui:dns-credential-delete", args=[credential.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("ui:dns-credential-detail", args=[credential.pk])
    assert "“ns1” cannot be deleted: 1 certificate uses it." in response.content.decode()

    Certificate.objects.all().delete()
    with used_meanwhile(DnsCredential, certificate_using):
        answer = api_for(alice).delete(f"/api/v1/dns-credentials/{credential.pk}/")
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Certificates still use these credentials."}
    assert DnsCredential.objects.filter(pk=credential.pk).exists()


def test_a_reload_preset_used_meanwhile_is_refused_by_the_page_and_the_api(admin_user, admin_client, alice,
                                                                           preset):
    with used_meanwhile(ReloadPreset, lambda row: target_using(row, alice)):
        response = admin_client.post(reverse("ui:reload-preset-delete", args=[preset.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("ui:reload-preset-list")
    assert "“nginx” cannot be deleted: 1 install target uses it." in response.content.decode()

    InstallTarget.objects.all().delete()
    with used_meanwhile(ReloadPreset, lambda row: target_using(row, alice)):
        answer = api_for(admin_user).delete(f"/api/v1/reload-presets/{preset.pk}/")
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Install targets still use this preset."}
    assert ReloadPreset.objects.filter(pk=preset.pk).exists()


def test_the_api_refuses_to_delete_what_is_in_use(admin_user, alice, credential, preset):
    certificate_using(credential)
    target_using(preset, alice)
    answer = api_for(alice).delete(f"/api/v1/dns-credentials/{credential.pk}/")
    assert (answer.status_code, answer.json()) == (400, {"detail": "Certificates still use these credentials."})
    answer = api_for(admin_user).delete(f"/api/v1/reload-presets/{preset.pk}/")
    assert (answer.status_code, answer.json()) == (400, {"detail": "Install targets still use this preset."})
    assert DnsCredential.objects.exists() and ReloadPreset.objects.exists()
