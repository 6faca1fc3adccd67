"""DNS-01: which TXT record to publish, and publishing it through the certificate's provider.

With a challenge alias (acme.sh --challenge-alias), `_acme-challenge.<name>` is a
CNAME to `_acme-challenge.<alias>` and the TXT record is written there, with the
credentials for the alias zone.
"""

from certs.dns import propagation, registry
from panel.toolkit import validation


def base_name(identifier: str) -> str:
    return identifier[2:] if identifier.startswith("*.") else identifier


def record_name(identifier: str, alias: str = "") -> str:
    return f"_acme-challenge.{alias or base_name(identifier)}"


def host_record(name: str) -> str:
    """`name` relative to its zone, as Aliyun's and DNSPod's consoles ask for it (主机记录):
    `_acme-challenge.wild` for _acme-challenge.wild.example.test. The zone is taken to be the
    registrable domain: asking DNS for it would be a query per page refresh."""
    zone = validation.registrable_domain(name)
    return name.removesuffix("." + zone) if name != zone else "@"


def alias_problems(domains, alias):
    """Why the CNAMEs an alias needs are not in place, one line per name; empty if they are."""
    expected = record_name("", alias)
    problems = []
    for name in sorted({base_name(d) for d in domains}):
        source = f"_acme-challenge.{name}"
        target = propagation.cname_target(source)
        if target is None:
            problems.append(f"{source} has no CNAME record; add: {source}. CNAME {expected}.")
        elif target != expected:
            problems.append(f"{source} is a CNAME to {target}, not to {expected}")
    return problems


def present(certificate, challenge) -> dict:
    credential = certificate.dns_credential
    with registry.outbound_for(credential):
        return registry.provider_for(credential).present(challenge.record_name, challenge.record_value)


def cleanup(certificate, challenge) -> None:
    credential = certificate.dns_credential
    with registry.outbound_for(credential):
        registry.provider_for(credential).cleanup(challenge.record_name, challenge.record_value,
                                                  challenge.provider_state)


def propagation_timeout(certificate) -> int:
    credential = certificate.dns_credential
    if credential.propagation_timeout:
        return credential.propagation_timeout
    return registry.provider_class(credential.provider).propagation_timeout
