"""acme.sh's DNS APIs (`--dns dns_xxx`) and the CertPanel providers they map onto.

One row per acme.sh dnsapi script: the CertPanel provider code (certs.dns.registry) and
which of the variables the script saves (`SAVED_<VAR>` in account.conf, `<VAR>` in the
domain conf) fills which provider field. A row lists its credentials as alternatives,
in the order the script tries them: the first set whose variables are all present is
used (Cloudflare: an API token, else the global key with its e-mail).

A script that is not here has no CertPanel provider whose fields really correspond
(e.g. dns_azure: the panel's Azure provider needs a resource group acme.sh never
asks for; dns_gcloud: acme.sh drives the gcloud CLI's own login); the reader reports it.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext_noop


@dataclass(frozen=True)
class DnsApi:
    provider: str
    credentials: tuple[dict, ...]  # alternatives: {acme.sh variable: provider field}
    optional: dict = field(default_factory=dict)  # {acme.sh variable: provider field}, when set
    fixed: dict = field(default_factory=dict)  # {provider field: value}: what the script hard-codes
    # {acme.sh variable: the note when it is set}, a gettext_noop msgid with %(variable)s
    notes: dict = field(default_factory=dict)
    # {acme.sh variable: the problem when it is set}, a gettext_noop msgid with %(api)s and %(variable)s
    blocking: dict = field(default_factory=dict)
    key_file: str = ""  # a required variable naming a BIND key file (dns_nsupdate): its TSIG key


def _one(**pairs):
    return (dict(pairs),)


DNS_APIS = {
    # The ones the issue names.
    "dns_dp": DnsApi("dnspod", _one(DP_Id="auth_username", DP_Key="auth_token")),
    "dns_ali": DnsApi("aliyun", _one(Ali_Key="auth_key_id", Ali_Secret="auth_secret")),
    "dns_tencent": DnsApi("qcloud", _one(Tencent_SecretId="secret_id", Tencent_SecretKey="secret_key")),
    # acme.sh signs in to IAM as a user and scopes the token to ap-southeast-1.
    "dns_huaweicloud": DnsApi(
        "huaweicloud",
        _one(HUAWEICLOUD_Username="iam_username", HUAWEICLOUD_Password="iam_password",
             HUAWEICLOUD_DomainName="iam_domain_name"),
        fixed={"region": "ap-southeast-1"}),
    "dns_cf": DnsApi(
        "cloudflare",
        ({"CF_Token": "auth_token"}, {"CF_Key": "auth_token", "CF_Email": "auth_username"}),
        optional={"CF_Zone_ID": "zone_id"},
        notes={"CF_Account_ID": gettext_noop("%(variable)s is not carried over: the panel finds the zone by its ID "
                                             "or name, not through the account")}),
    "dns_gd": DnsApi("godaddy", _one(GD_Key="auth_key", GD_Secret="auth_secret")),
    "dns_ovh": DnsApi(
        "ovh", _one(OVH_AK="auth_application_key", OVH_AS="auth_application_secret", OVH_CK="auth_consumer_key"),
        optional={"OVH_END_POINT": "auth_entrypoint"}),  # ovh-eu, ovh-ca, …; the provider checks the name
    "dns_aws": DnsApi(
        "route53", _one(AWS_ACCESS_KEY_ID="auth_access_key", AWS_SECRET_ACCESS_KEY="auth_access_secret"),
        notes={"AWS_DNS_SLOWRATE": gettext_noop("%(variable)s is not carried over: the panel paces its own API "
                                                "calls")}),
    "dns_nsupdate": DnsApi(
        "rfc2136", _one(NSUPDATE_SERVER="server"),
        optional={"NSUPDATE_SERVER_PORT": "port", "NSUPDATE_ZONE": "zone"},
        notes={"NSUPDATE_OPT": gettext_noop("%(variable)s is not carried over: extra nsupdate options are not "
                                            "used")},
        key_file="NSUPDATE_KEY"),
    # Every other acme.sh dnsapi whose variables correspond to a provider's fields.
    "dns_arvan": DnsApi("arvancloud", _one(Arvan_Token="auth_token")),
    "dns_cloudns": DnsApi(
        "cloudns", ({"CLOUDNS_AUTH_ID": "auth_id", "CLOUDNS_AUTH_PASSWORD": "auth_password"},
                    {"CLOUDNS_SUB_AUTH_ID": "auth_subid", "CLOUDNS_AUTH_PASSWORD": "auth_password"})),
    "dns_constellix": DnsApi("constellix", _one(CONSTELLIX_Key="auth_username", CONSTELLIX_Secret="auth_token")),
    "dns_cx": DnsApi("cloudxns", _one(CX_Key="auth_username", CX_Secret="auth_token")),
    "dns_desec": DnsApi("desec", _one(DEDYN_TOKEN="auth_token")),
    "dns_dgon": DnsApi("digitalocean", _one(DO_API_KEY="auth_token")),
    "dns_dnsimple": DnsApi("dnsimple", _one(DNSimple_OAUTH_TOKEN="auth_token")),
    "dns_dnsservices": DnsApi(
        "dnsservices", _one(DnsServices_Username="auth_username", DnsServices_Password="auth_password")),
    "dns_dreamhost": DnsApi("dreamhost", _one(DH_API_KEY="auth_token")),
    "dns_duckdns": DnsApi("duckdns", _one(DuckDNS_Token="auth_token")),
    "dns_easydns": DnsApi("easydns", _one(EASYDNS_Token="auth_username", EASYDNS_Key="auth_token")),
    "dns_euserv": DnsApi("euserv", _one(EUSERV_Username="auth_username", EUSERV_Password="auth_password")),
    "dns_exoscale": DnsApi("exoscale", _one(EXOSCALE_API_KEY="auth_key", EXOSCALE_SECRET_KEY="auth_secret")),
    # LiveDNS is Gandi's REST API; lexicon tells a personal access token from an API key by its length.
    "dns_gandi_livedns": DnsApi(
        "gandi", ({"GANDI_LIVEDNS_TOKEN": "auth_token"}, {"GANDI_LIVEDNS_KEY": "auth_token"}),
        fixed={"api_protocol": "rest"}),
    "dns_he": DnsApi("henet", _one(HE_Username="auth_username", HE_Password="auth_password")),
    "dns_hetzner": DnsApi("hetzner", _one(HETZNER_Token="auth_token")),
    "dns_hostingde": DnsApi(
        "hostingde", _one(HOSTINGDE_APIKEY="auth_token"),
        notes={"HOSTINGDE_ENDPOINT": gettext_noop("%(variable)s is not carried over: the panel talks to "
                                                  "hosting.de's own endpoint")}),
    "dns_infomaniak": DnsApi("infomaniak", _one(INFOMANIAK_API_TOKEN="auth_token")),
    "dns_internetbs": DnsApi(
        "internetbs", _one(INTERNETBS_API_KEY="auth_key", INTERNETBS_API_PASSWORD="auth_password")),
    "dns_inwx": DnsApi(
        "inwx", _one(INWX_User="auth_username", INWX_Password="auth_password"),
        blocking={"INWX_Shared_Secret": gettext_noop("%(api)s uses %(variable)s: the panel's INWX provider cannot "
                                                     "sign in with two-factor authentication; use an INWX account "
                                                     "without it")}),
    "dns_linode": DnsApi("linode", _one(LINODE_API_KEY="auth_token")),
    "dns_linode_v4": DnsApi("linode4", _one(LINODE_V4_API_KEY="auth_token")),
    "dns_luadns": DnsApi("luadns", _one(LUA_Email="auth_username", LUA_Key="auth_token")),
    "dns_me": DnsApi("dnsmadeeasy", _one(ME_Key="auth_username", ME_Secret="auth_token")),
    "dns_mythic_beasts": DnsApi("mythicbeasts", _one(MB_AK="auth_username", MB_AS="auth_password")),
    "dns_namecheap": DnsApi(
        "namecheap", _one(NAMECHEAP_USERNAME="auth_username", NAMECHEAP_API_KEY="auth_token"),
        optional={"NAMECHEAP_SOURCEIP": "auth_client_ip"}),
    "dns_namecom": DnsApi("namecom", _one(Namecom_Username="auth_username", Namecom_Token="auth_token")),
    "dns_namesilo": DnsApi("namesilo", _one(Namesilo_Key="auth_token")),
    "dns_netcup": DnsApi(
        "netcup", _one(NC_CID="auth_customer_id", NC_Apikey="auth_api_key", NC_Apipw="auth_api_password")),
    "dns_njalla": DnsApi("njalla", _one(NJALLA_Token="auth_token")),
    "dns_nsone": DnsApi("nsone", _one(NS1_Key="auth_token")),
    "dns_online": DnsApi("online", _one(ONLINE_API_KEY="auth_token")),
    "dns_pdns": DnsApi(
        "powerdns", _one(PDNS_Url="pdns_server", PDNS_Token="auth_token"),
        optional={"PDNS_ServerId": "pdns_server_id"},
        notes={"PDNS_Ttl": gettext_noop("%(variable)s is not carried over: the panel uses its own TTL for "
                                        "challenge records")}),
    "dns_pointhq": DnsApi("pointhq", _one(PointHQ_Email="auth_username", PointHQ_Key="auth_token")),
    "dns_porkbun": DnsApi("porkbun", _one(PORKBUN_API_KEY="auth_key", PORKBUN_SECRET_API_KEY="auth_secret")),
    "dns_rage4": DnsApi("rage4", _one(RAGE4_USERNAME="auth_username", RAGE4_TOKEN="auth_token")),
    "dns_scaleway": DnsApi("scaleway", _one(SCALEWAY_API_TOKEN="auth_secret_key")),
    "dns_timeweb": DnsApi("timeweb", _one(TW_Token="auth_token")),
    "dns_ultra": DnsApi("ultradns", _one(ULTRA_USR="auth_username", ULTRA_PWD="auth_password")),
    "dns_vercel": DnsApi("vercel", _one(VERCEL_TOKEN="auth_token")),
    "dns_vultr": DnsApi("vultr", _one(VULTR_API_KEY="auth_token")),
    "dns_yandex": DnsApi("yandex", _one(PDD_Token="auth_token")),
    "dns_zilore": DnsApi("zilore", _one(Zilore_Key="auth_key")),
    "dns_zonomi": DnsApi("zonomi", _one(ZM_Key="auth_token")),
}


def variables(api: DnsApi) -> list[str]:
    """Every variable the row reads, for looking them up and for the report."""
    names = [name for alternative in api.credentials for name in alternative]
    names += [*api.optional, *api.notes, *api.blocking] + ([api.key_file] if api.key_file else [])
    return list(dict.fromkeys(names))
