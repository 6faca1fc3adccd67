"""CAs an administrator offers every user (CERTPANEL_EXTRA_CAS) beside the public ones."""

import importlib

import pytest
from django.core.exceptions import ImproperlyConfigured

from certs import cas
from panel.toolkit.config import Env


def test_extra_cas_are_read_as_code_and_url_and_a_bad_entry_is_named():
    env = Env({"CERTPANEL_EXTRA_CAS": "internal=https://ca.lan/acme/directory, Bad Code=https://x/, plain=http://y/"})
    assert env.named_urls("CERTPANEL_EXTRA_CAS", schemes=("https",)) == {"internal": "https://ca.lan/acme/directory"}
    assert len(env.problems) == 2
    assert "'Bad Code=https://x/'" in env.problems[0] and "'plain=http://y/'" in env.problems[1]


@pytest.fixture
def reload_cas(settings):
    as_configured = settings.EXTRA_CAS
    yield lambda: importlib.reload(cas)
    settings.EXTRA_CAS = as_configured
    importlib.reload(cas)  # back to the presets of the test run


def test_an_extra_ca_is_offered_as_a_preset_and_may_not_take_a_built_in_code(settings, reload_cas):
    settings.EXTRA_CAS = {"internal": "https://ca.lan/acme/directory"}
    reload_cas()
    assert cas.preset_for_url("https://ca.lan/acme/directory").code == "internal"
    assert cas.PRESETS["letsencrypt"].directory_url.startswith("https://acme-v02.")
    settings.EXTRA_CAS = {"letsencrypt": "https://ca.lan/acme/directory"}
    with pytest.raises(ImproperlyConfigured, match="letsencrypt already names a built-in CA"):
        reload_cas()
