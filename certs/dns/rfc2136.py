"""RFC 2136 dynamic updates with TSIG (BIND, Knot, PowerDNS, ...), through dnspython."""

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
from django.utils.translation import gettext_lazy as _

from certs.dns.base import DnsProvider, DnsProviderError, Field

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}
TIMEOUT = 10


class Rfc2136Provider(DnsProvider):
    code = "rfc2136"
    label = _("RFC 2136 (BIND, Knot, PowerDNS… with TSIG)")
    fields = (
        Field("server", _("Server address"), help=_("IP address of the primary name server")),
        Field("port", _("Port"), required=False, default="53"),
        Field("zone", _("Zone"), required=False, help=_("Found from the SOA record when left blank")),
        Field("tsig_key_name", _("TSIG key name")),
        Field("tsig_algorithm", _("TSIG algorithm"), required=False, default="hmac-sha256",
              help=", ".join(ALGORITHMS)),
        Field("tsig_secret", _("TSIG secret (base64)"), sensitive=True),
    )

    def __init__(self, values):
        super().__init__(values)
        if self.values["tsig_algorithm"] not in ALGORITHMS:
            raise DnsProviderError(_("Unknown TSIG algorithm; use one of %(names)s") % {"names": ", ".join(ALGORITHMS)})
        try:
            self.port = int(self.values["port"])
            self.keyring = dns.tsigkeyring.from_text({self.values["tsig_key_name"]: self.values["tsig_secret"]})
        except ValueError:  # a port that is not a number, or a secret that is not base64
            raise DnsProviderError(_("Check the port (a number) and the TSIG secret (base64).")) from None
        self.keyname = dns.name.from_text(self.values["tsig_key_name"])

    def _zone_for(self, name):
        if self.values["zone"]:
            return dns.name.from_text(self.values["zone"])
        candidate = dns.name.from_text(name)
        while len(candidate.labels) > 1:
            query = dns.message.make_query(candidate, dns.rdatatype.SOA)
            try:
                response = dns.query.udp(query, self.values["server"], port=self.port, timeout=TIMEOUT)
            except (OSError, dns.exception.DNSException) as exc:
                raise DnsProviderError(_("No answer from %(server)s: %(error)s")
                                       % {"server": self._where(), "error": exc}) from None
            if any(rrset.rdtype == dns.rdatatype.SOA for rrset in response.answer):
                return candidate
            candidate = candidate.parent()
        raise DnsProviderError(_("%(server)s is not authoritative for any zone above %(name)s; set the zone")
                               % {"server": self._where(), "name": name})

    def _where(self):
        return f"{self.values['server']}:{self.port}"

    def _send(self, update):
        try:
            response = dns.query.tcp(update, self.values["server"], port=self.port, timeout=TIMEOUT)
        except dns.tsig.PeerError as exc:
            raise DnsProviderError(_("%(server)s rejected the TSIG key: %(error)s")
                                   % {"server": self._where(), "error": exc}) from None
        except (OSError, dns.exception.DNSException) as exc:
            raise DnsProviderError(_("No answer from %(server)s: %(error)s")
                                   % {"server": self._where(), "error": exc}) from None
        if response.rcode() != dns.rcode.NOERROR:
            raise DnsProviderError(
                _("%(server)s refused the update (%(rcode)s): check the TSIG key and that it may update the zone")
                % {"server": self._where(), "rcode": dns.rcode.to_text(response.rcode())}
            )

    def _update(self, zone):
        algorithm = ALGORITHMS[self.values["tsig_algorithm"]]
        return dns.update.Update(zone, keyring=self.keyring, keyname=self.keyname, keyalgorithm=algorithm)

    def present(self, name, value):
        zone = self._zone_for(name)
        update = self._update(zone)
        update.add(dns.name.from_text(name), self.ttl, dns.rdatatype.TXT, f'"{value}"')
        self._send(update)
        return {"zone": zone.to_text()}

    def cleanup(self, name, value, state):
        zone = dns.name.from_text(state["zone"]) if state.get("zone") else self._zone_for(name)
        update = self._update(zone)
        update.delete(dns.name.from_text(name), dns.rdatatype.TXT, f'"{value}"')
        self._send(update)

    def check(self):
        if not self.values["zone"]:
            raise DnsProviderError(_("Give the zone to test these credentials against."))
        zone = dns.name.from_text(self.values["zone"])
        # Deleting a record that does not exist is a real, authenticated update that changes nothing.
        update = self._update(zone)
        update.delete(dns.name.from_text("_certpanel-check", zone), dns.rdatatype.TXT)
        self._send(update)
