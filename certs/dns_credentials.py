"""DNS credentials: checked against the provider's declared fields, stored encrypted,
tested on request. The UI, the API and the importers all come through here.

Files and UNIX sockets of this server are for administrators only: a provider that works on
them (localzone) and any value naming one (a key file path, PowerDNS over a socket) is
refused for everyone else, naming the provider or the field."""

import json

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from certs.dns import registry
from certs.dns.base import DnsProviderError
from panel.toolkit import access, validation


def provider_label(code):
    """The provider's label, or its code if it is no longer registered."""
    try:
        return str(registry.provider_class(code).label)
    except DnsProviderError:
        return code


def clean_values(provider_code, values, *, owner):
    """Only the provider's declared fields, required ones present, and nothing of this server's
    files unless `owner` is an administrator; ValidationError otherwise."""
    try:
        provider_class = registry.provider_class(provider_code)
    except DnsProviderError as exc:
        raise ValidationError({"provider": [str(exc)]})
    declared = {f.name for f in provider_class.fields}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ValidationError({"credentials": [_("Not fields of this provider: %(names)s") % {"names": ", ".join(unknown)}]})
    cleaned = {name: str(value).strip() for name, value in values.items() if str(value).strip()}
    refusal = registry.admin_only_refusal(provider_class, cleaned, owner)
    if refusal:
        raise ValidationError({"provider" if provider_class.admin_only else "credentials": [refusal]})
    _check_urls(provider_class, cleaned, owner)
    try:
        provider_class(cleaned)  # construction checks required fields and formats, offline
    except DnsProviderError as exc:
        raise ValidationError({"credentials": [str(exc)]})
    return cleaned


def _check_urls(provider_class, values, owner):
    """Early word on an API or server URL into the server's own network (PowerDNS, Huawei's
    endpoints, lexicon's *_server options): refused again, and for good, when connected to."""
    if access.is_admin(owner):
        return
    labels = {f.name: f.label for f in provider_class.fields}
    errors = []
    for name, value in values.items():
        if value.lower().startswith(("http://", "https://")):
            try:
                validation.validate_outbound_url(value, allow_internal=False)
            except ValidationError as exc:
                errors += [f"{labels[name]}: {message}" for message in exc.messages]
    if errors:
        raise ValidationError({"credentials": errors})


def clean_changes(credential, changes):
    """The values to store when `credential` is edited, checked as at creation against the rules
    of its owner (whoever edits). `changes` holds the fields to change: a secret field given
    empty keeps the stored secret (it is never shown, so it cannot be typed again) and given
    None removes it (switching to another set of a provider's fields, say Huawei Cloud's AK/SK
    to an IAM user), any other field given empty is cleared, and a field left out keeps its
    stored value."""
    try:
        provider_class = registry.provider_class(credential.provider)
    except DnsProviderError as exc:
        raise ValidationError({"provider": [str(exc)]})
    declared = {f.name: f for f in provider_class.fields}
    # Values of fields the provider no longer declares go: the owner cannot see them to remove them.
    values = {name: value for name, value in credential.values().items() if name in declared}
    for name, value in changes.items():
        if name in declared and declared[name].sensitive and value is None:
            values.pop(name, None)
        elif name in declared and declared[name].sensitive and not str(value).strip():
            continue
        else:
            values[name] = value
    return clean_values(credential.provider, values, owner=credential.owner)


def update_credential(credential, name, credentials, propagation_timeout=None):
    """Store an edit (values from clean_changes); the provider stays. Certificates using these
    credentials read them at each order step, so their next order uses the new values. Only
    changed columns are saved: the audit log names them (never their values)."""
    before = {"name": credential.name, "credentials": credential.values(),
              "propagation_timeout": credential.propagation_timeout}
    after = {"name": name, "credentials": credentials, "propagation_timeout": propagation_timeout}
    changed = [field for field in after if after[field] != before[field]]
    credential.name, credential.propagation_timeout = name, propagation_timeout
    credential.credentials = json.dumps(credentials)
    if changed:
        credential.save(update_fields=changed)
    return credential


def save_credential(credential, provider, name, credentials, propagation_timeout=None):
    credential.provider, credential.name = provider, name
    credential.credentials = json.dumps(credentials)
    credential.propagation_timeout = propagation_timeout
    credential.save()
    return credential


def test_credential(credential):
    """(ok, message) from asking the provider, read-only, whether the credentials work."""
    try:
        with registry.outbound_for(credential):
            registry.provider_for(credential).check()
    except DnsProviderError as exc:
        return False, str(exc)
    return True, _("The provider accepted these credentials.")
