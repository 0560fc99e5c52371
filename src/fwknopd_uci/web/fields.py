# The settings the page shows as their own fields: labels, one-line help
# with the default, widgets.
#
# Labels and help follow luci-app-fwknopd's words where openwrt.md 2.2 has
# them, with the default in parentheses (STYLE.md 2.4). The datatypes are not
# repeated here: the page asks validate.option_datatype, the generator's
# table. Every string is marked for translation.
#
# Flags keep LuCI's Y/N convention: checking writes `Y`; unchecking removes
# the option when fwknopd's default is off, and writes `N` when it is on (LuCI
# removed it there too, so ENABLE_NAT_DNS could never be turned off).

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ..spa import HMAC_TYPES
from .i18n import _

__all__ = [
    "ACCESS_AFTER_KEYS",
    "ACCESS_BEFORE_KEYS",
    "ACCESS_FIELDS",
    "ACCESS_NAMES",
    "CONFIG_FIELDS",
    "CONFIG_NAMES",
    "HMAC_KEY_FIELD",
    "HMAC_KEY_TYPE_FIELD",
    "KEY_FIELD",
    "KEY_TYPES",
    "KEY_TYPE_FIELD",
    "NETWORK_FIELD",
    "UCI_ENABLED_FIELD",
    "Field",
]

Kind = Literal["text", "flag", "select", "key", "number"]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of the page.

    Attributes:
        option: the UCI option (or the page's own name: key, key_type, ...).
        label: the short label.
        help: one line, with the default in parentheses.
        kind: text, number (text with a numeric keyboard), flag (checkbox),
            select or key (a masked text field).
        choices: (value, label) pairs of a select.
        default_on: a flag's value when the option is absent (fwknopd's
            default).
        placeholder: a hint shown in an empty text field.
    """

    option: str
    label: str
    help: str
    kind: Kind = "text"
    choices: tuple[tuple[str, str], ...] = ()
    default_on: bool = False
    placeholder: str = ""


#: key_type / hmac_key_type values -> (UCI option of the encryption key, of the HMAC key).
KEY_TYPES: Final = {"base64": ("KEY_BASE64", "HMAC_KEY_BASE64"), "plain": ("KEY", "HMAC_KEY")}
_KEY_CHOICES: Final = (("base64", _("Base64 key")), ("plain", _("Normal key")))
_PORTS: Final = "protocol/port,..."

UCI_ENABLED_FIELD: Final = Field(
    "uci_enabled", _("Enable config overwrite"),
    _("When unchecked, fwknopd uses /etc/fwknop/fwknopd.conf and access.conf as they are "
      "and ignores these settings (default: off)."), "flag")
NETWORK_FIELD: Final = Field(
    "network", _("Network"),
    _("The logical network fwknopd listens on; it starts when the network comes up, and "
      "this takes precedence over the interface to sniff (default: wan)."))

SOURCE: Final = Field(
    "SOURCE", _("Source address"),
    _("Allowed source addresses: ANY, or IPv4 addresses and networks, comma-separated "
      "(required; the shipped file has ANY)."), placeholder="ANY")
DESTINATION: Final = Field(
    "DESTINATION", _("Destination address"),
    _("Destination addresses this stanza applies to: ANY, or IPv4 addresses and networks, "
      "comma-separated (default: ANY)."))
KEY_FIELD: Final = Field(
    "key", _("Key"),
    _("The Rijndael key used to decrypt SPA packets; Generate keys makes a new one "
      "(required)."), "key")
KEY_TYPE_FIELD: Final = Field(
    "key_type", _("Key type"),
    _("Base64 key is written as KEY_BASE64, Normal key as KEY (default: Base64 key)."),
    "select", _KEY_CHOICES)
HMAC_KEY_FIELD: Final = Field(
    "hmac_key", _("HMAC key"),
    _("The HMAC authentication key, checked before a packet is decrypted (default: none: "
      "packets without an HMAC are accepted)."), "key")
HMAC_KEY_TYPE_FIELD: Final = Field(
    "hmac_key_type", _("HMAC key type"),
    _("Base64 key is written as HMAC_KEY_BASE64, Normal key as HMAC_KEY (default: Base64 "
      "key)."), "select", _KEY_CHOICES)
HMAC_DIGEST_TYPE: Final = Field(
    "HMAC_DIGEST_TYPE", _("HMAC digest"),
    _("The HMAC's digest; it must match the client's (default: sha256)."), "select",
    (("", _("default (sha256)")), *((name, name) for name in HMAC_TYPES)))
OPEN_PORTS: Final = Field(
    "OPEN_PORTS", _("Open ports"),
    _("Ports opened on a valid knock (default: empty: the ports the client asks for, "
      "unless they are restricted)."), placeholder=_PORTS)
RESTRICT_PORTS: Final = Field(
    "RESTRICT_PORTS", _("Restricted ports"),
    _("Ports that are never opened, whatever the client asks for (default: empty)."),
    placeholder=_PORTS)
FW_ACCESS_TIMEOUT: Final = Field(
    "FW_ACCESS_TIMEOUT", _("Access timeout"),
    _("Seconds a port stays open after a valid knock (default: 30)."), "number",
    placeholder="30")
MAX_FW_TIMEOUT: Final = Field(
    "MAX_FW_TIMEOUT", _("Maximum client timeout"),
    _("The longest timeout a client may ask for, in seconds (default: 300)."), "number",
    placeholder="300")
REQUIRE_SOURCE_ADDRESS: Final = Field(
    "REQUIRE_SOURCE_ADDRESS", _("Require source address"),
    _("The SPA packet must carry a real IP address: the client must use -R or -a, not -s "
      "(default: off)."), "flag")
REQUIRE_USERNAME: Final = Field(
    "REQUIRE_USERNAME", _("Required user name"),
    _("Only SPA packets sent by this user name are accepted (default: any user)."))

#: Access stanza fields shown above the keys, and below them.
ACCESS_BEFORE_KEYS: Final = (SOURCE, DESTINATION)
ACCESS_AFTER_KEYS: Final = (HMAC_DIGEST_TYPE, OPEN_PORTS, RESTRICT_PORTS, FW_ACCESS_TIMEOUT,
                            MAX_FW_TIMEOUT, REQUIRE_SOURCE_ADDRESS, REQUIRE_USERNAME)
ACCESS_FIELDS: Final = ACCESS_BEFORE_KEYS + ACCESS_AFTER_KEYS
ACCESS_NAMES: Final = frozenset(f.option for f in ACCESS_FIELDS)

CONFIG_FIELDS: Final = (
    Field("PCAP_INTF", _("Interface to sniff"),
          _("The network device to sniff when no network is chosen; it is not followed "
            "(default: none: the network, else wan)."), placeholder="eth0"),
    Field("MAX_SPA_PACKET_AGE", _("Maximum SPA packet age"),
          _("Maximum age in seconds of an SPA packet that is accepted (default: 120)."),
          "number", placeholder="120"),
    Field("ENABLE_UDP_SERVER", _("UDP server"),
          _("Receive SPA packets on a UDP socket instead of sniffing; the port is opened in "
            "the firewall (default: off)."), "flag"),
    Field("UDPSERV_PORT", _("UDP server port"),
          _("The port the UDP server listens on (default: 62201)."), "number",
          placeholder="62201"),
    Field("ENABLE_IPT_FORWARDING", _("Allow forwarding"),
          _("Allow access through the router to other hosts, not only to the router itself; "
            "fwknopd-uci does not grant NAT access yet (default: off)."), "flag"),
    Field("ENABLE_NAT_DNS", _("Allow DNS names in NAT"),
          _("Allow NAT destinations given as DNS names (default: on)."), "flag",
          default_on=True),
)
CONFIG_NAMES: Final = frozenset(f.option for f in CONFIG_FIELDS)
